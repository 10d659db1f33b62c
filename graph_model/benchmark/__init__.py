"""Public link-prediction benchmark (LightGCN `train.txt`/`test.txt` format, e.g. Gowalla).

Every model is ranked by one harness under one protocol: full ranking over all items with the
user's train items excluded, Recall@K and NDCG@K averaged over users with test items.
"""
