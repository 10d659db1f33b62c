"""The canonical tables: what synthetic data, file loads and training snapshots hold."""

import pyarrow as pa

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "regions": pa.schema(
        [("id", pa.string()), ("name", pa.string()), ("lat", pa.float64()), ("lon", pa.float64())]
    ),
    "causes": pa.schema([("id", pa.string()), ("name", pa.string())]),
    "donors": pa.schema([("id", pa.string()), ("name", pa.string()), ("region_id", pa.string())]),
    "nonprofits": pa.schema(
        [("id", pa.string()), ("name", pa.string()), ("region_id", pa.string())]
    ),
    "donor_causes": pa.schema([("donor_id", pa.string()), ("cause_id", pa.string())]),
    "nonprofit_causes": pa.schema([("nonprofit_id", pa.string()), ("cause_id", pa.string())]),
    "donations": pa.schema(
        [
            ("id", pa.string()),
            ("donor_id", pa.string()),
            ("nonprofit_id", pa.string()),
            ("amount", pa.float64()),
            ("ts", pa.int64()),  # epoch seconds, UTC
        ]
    ),
}

# Nodes before the relationships that reference them.
TABLE_ORDER: tuple[str, ...] = tuple(TABLE_SCHEMAS)

Tables = dict[str, pa.Table]
