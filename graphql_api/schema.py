"""The GraphQL schema. Resolvers only translate: the logic lives in the services."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import ExecutionContext, Info

from donor_match.services.auth import Role
from donor_match.services.catalog import NonprofitQuery
from donor_match.services.ids import decode_nonprofit_cursor, encode_nonprofit_cursor
from donor_match.services.rate_limit import RateLimiter
from donor_match.settings import AppSettings
from graphql_api.context import Context
from graphql_api.errors import ErrorCodes, log_errors
from graphql_api.execution import PlainFieldExecution
from graphql_api.hooks import FastExtensionsRunner
from graphql_api.limits import RateLimit, SubscriptionsNeedWebSocket, cost_rule
from graphql_api.observability import ApiMetrics, OperationMetrics, OperationPhases, run_in_thread
from graphql_api.operation_plan import PlannedSchema
from graphql_api.parsing import ParsedOperationCache, ValidatedOperationCache
from graphql_api.types import (
    AnalyticsResult,
    ApiKey,
    Cause,
    Donation,
    Donor,
    DonorPreferencesInput,
    FeedbackAction,
    Initiative,
    InitiativeInput,
    KeyRole,
    Match,
    MatchFilter,
    ModelPromotion,
    Nonprofit,
    NonprofitConnection,
    NonprofitEdge,
    NonprofitFilter,
    NonprofitInsights,
    NonprofitProfileInput,
    PageInfo,
    RecordDonationInput,
)

Ctx = Info[Context, None]


@strawberry.type
class Query:
    @strawberry.field(description="A donor by id; NOT_FOUND if unknown.")
    async def donor(self, info: Ctx, id: strawberry.ID) -> Donor:
        return Donor.of(
            await run_in_thread(
                info.context.services.catalog.donor_profile, info.context.principal(), id
            )
        )

    @strawberry.field(description="A nonprofit by id; NOT_FOUND if unknown.")
    async def nonprofit(self, info: Ctx, id: strawberry.ID) -> Nonprofit:
        return Nonprofit.of(await run_in_thread(info.context.services.catalog.nonprofit, id))

    @strawberry.field(description="Nonprofits by id, filtered, as a cursor connection.")
    async def nonprofits(
        self,
        info: Ctx,
        filter: NonprofitFilter | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> NonprofitConnection:
        query = filter.query() if filter else NonprofitQuery()
        after_id = decode_nonprofit_cursor(after) if after else None
        ids, has_next = await run_in_thread(
            info.context.services.catalog.nonprofit_page, query, first, after_id
        )
        nodes = await info.context.nonprofit_loader.load_many(ids)
        edges = [NonprofitEdge(cursor=encode_nonprofit_cursor(n.id), node=n) for n in nodes if n]
        return NonprofitConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    @strawberry.field(
        description="Analysts: read-only Cypher on the anonymized graph, with a row cap."
    )
    async def analytics_query(
        self, info: Ctx, cypher: str, params: JSON | None = None
    ) -> AnalyticsResult:
        result = await run_in_thread(
            info.context.services.analytics.query, info.context.principal(), cypher, params
        )
        return AnalyticsResult(
            columns=result.columns, rows=cast(list[JSON], result.rows), truncated=result.truncated
        )

    @strawberry.field(
        description="For a nonprofit: who supports causes like its own, in aggregate."
    )
    async def nonprofit_insights(self, info: Ctx, id: strawberry.ID) -> NonprofitInsights:
        found = await run_in_thread(
            info.context.services.insights.for_nonprofit, info.context.principal(), id
        )
        return NonprofitInsights.of(found)

    @strawberry.field(description="Every cause, by name.")
    async def causes(self, info: Ctx) -> list[Cause]:
        return [Cause.of(c) for c in await run_in_thread(info.context.services.catalog.causes)]

    @strawberry.field(description="A cause by id; NOT_FOUND if unknown.")
    async def cause(self, info: Ctx, id: strawberry.ID) -> Cause:
        return Cause.of(await run_in_thread(info.context.services.catalog.cause, id))

    @strawberry.field(
        description="The donor's best nonprofits from the served model, re-ranked by impact and "
        "explained, excluding by default those the donor already supports. Page with `after` "
        "(a match's `cursor`); `impactWeight` in [0, 1] defaults to the server's setting."
    )
    async def matches(
        self,
        info: Ctx,
        donor_id: strawberry.ID,
        first: int = 10,
        filter: MatchFilter | None = None,
        after: str | None = None,
        impact_weight: float | None = None,
    ) -> list[Match]:
        filter = filter or MatchFilter()
        only = NonprofitQuery(
            tuple(filter.causes) if filter.causes is not None else None,
            tuple(filter.regions) if filter.regions is not None else None,
        )
        found = await run_in_thread(
            info.context.services.matches.matches,
            info.context.principal(),
            donor_id,
            first,
            only,
            filter.exclude_supported,
            after,
            impact_weight,
        )
        info.context.metrics.matches_served.inc(len(found))
        model = info.context.services.matches.model
        info.context.services.served_matches.add(model.version if model else None, len(found))
        return Match.served(found)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Record a donation once per `input.id`: the same content again changes "
        "nothing; other content, or an id another gift holds, is CONFLICT."
    )
    async def record_donation(self, info: Ctx, input: RecordDonationInput) -> Donation:
        donation = await run_in_thread(
            info.context.services.donations.record,
            info.context.principal(),
            input.donor_id,
            input.nonprofit_id,
            input.amount,
            input.id,
            input.timestamp,
        )
        return Donation.of(donation)

    @strawberry.mutation(description="A donor's stated causes, region and budget.")
    async def update_donor_preferences(
        self, info: Ctx, donor_id: strawberry.ID, input: DonorPreferencesInput
    ) -> Donor:
        donor = await run_in_thread(
            info.context.services.profiles.set_donor_preferences,
            info.context.principal(),
            donor_id,
            input.cause_ids,
            input.region_id,
            input.budget,
        )
        return Donor.of(donor)

    @strawberry.mutation(description="Create or replace a nonprofit's own profile and needs.")
    async def upsert_nonprofit(self, info: Ctx, input: NonprofitProfileInput) -> Nonprofit:
        nonprofit = await run_in_thread(
            info.context.services.profiles.upsert_nonprofit, info.context.principal(),
            input.profile(),
        )
        return Nonprofit.of(nonprofit)

    @strawberry.mutation(description="A nonprofit's current unmet funding need (null: none).")
    async def set_funding_need(
        self, info: Ctx, nonprofit_id: strawberry.ID, funding_need: float | None
    ) -> Nonprofit:
        nonprofit = await run_in_thread(
            info.context.services.profiles.set_funding_need, info.context.principal(),
            nonprofit_id, funding_need,
        )
        return Nonprofit.of(nonprofit)

    @strawberry.mutation(description="Create or replace one of a nonprofit's own initiatives.")
    async def upsert_initiative(self, info: Ctx, input: InitiativeInput) -> Initiative:
        initiative = await run_in_thread(
            info.context.services.profiles.upsert_initiative, info.context.principal(),
            input.draft(),
        )
        return Initiative.of(initiative)

    @strawberry.mutation(description="Remove one of a nonprofit's own initiatives.")
    async def delete_initiative(self, info: Ctx, id: strawberry.ID) -> bool:
        await run_in_thread(
            info.context.services.profiles.delete_initiative, info.context.principal(), id
        )
        return True

    @strawberry.mutation(description="What the donor did with a match; kept as training signal.")
    async def match_feedback(
        self, info: Ctx, match_id: strawberry.ID, action: FeedbackAction
    ) -> bool:
        await run_in_thread(
            info.context.services.matches.record_feedback, info.context.principal(), match_id,
            action,
        )
        return True

    @strawberry.mutation(description="Admins: issue an API key (shown once) for an integrator.")
    async def create_api_key(self, info: Ctx, subject: str, role: KeyRole) -> ApiKey:
        issued = await run_in_thread(
            info.context.services.admin.create_api_key, info.context.principal(), subject,
            Role(role.value),
        )
        return ApiKey(id=strawberry.ID(issued.id), key=issued.key)

    @strawberry.mutation(description="Admins: revoke an API key; it stops working at once.")
    async def revoke_api_key(self, info: Ctx, id: strawberry.ID) -> bool:
        await run_in_thread(
            info.context.services.admin.revoke_api_key, info.context.principal(), id
        )
        return True

    @strawberry.mutation(
        description="Admins: serve a registered model version. Refused with BAD_USER_INPUT when "
        "it fails its quality gate (the message says why), NOT_FOUND when unknown."
    )
    async def promote_model(self, info: Ctx, version: str) -> ModelPromotion:
        change = await run_in_thread(
            info.context.services.models.promote, info.context.principal(), version
        )
        return ModelPromotion(
            version=change.version, previous=change.previous, changed=change.action != "unchanged"
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Donations recorded for a nonprofit, as they happen.")
    async def donation_recorded(
        self, info: Ctx, nonprofit_id: strawberry.ID
    ) -> AsyncGenerator[Donation, None]:
        with info.context.subscription_slots.hold(info.context):
            feed = info.context.services.donations.feed(info.context.principal(), nonprofit_id)
            async for donation in feed:
                yield Donation.of(donation)

    @strawberry.subscription(
        description="The donor's matches again, each time something changes them."
    )
    async def matches_updated(
        self, info: Ctx, donor_id: strawberry.ID, first: int = 10
    ) -> AsyncGenerator[list[Match], None]:
        with info.context.subscription_slots.hold(info.context):
            updates = info.context.services.matches.updates(
                info.context.principal(), donor_id, first
            )
            async for found in updates:
                yield Match.served(found)

    @strawberry.subscription(description="A nonprofit's profile, each time it changes.")
    async def nonprofit_updated(
        self, info: Ctx, id: strawberry.ID
    ) -> AsyncGenerator[Nonprofit, None]:
        with info.context.subscription_slots.hold(info.context):
            async for nonprofit in info.context.services.profiles.nonprofit_updates(id):
                yield Nonprofit.of(nonprofit)


class _NameConverter(NameConverter):
    """Strawberry's, remembering each name's GraphQL form: Strawberry converts every argument's
    name again on every call of its resolver (a third of a resolver call's own cost)."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        try:
            return self._names[name]
        except KeyError:
            converted = self._names[name] = super().apply_naming_config(name)
            return converted


class _Schema(PlannedSchema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error at error level with its traceback: a flood of FORBIDDEN
        # would be a flood of tracebacks.
        log_errors(errors, execution_context)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return FastExtensionsRunner(execution_context, extensions)


def build_schema(
    settings: AppSettings, limiter: RateLimiter, metrics: ApiMetrics
) -> strawberry.Schema:
    """The schema with metrics and the configured limits (depth, aliases, tokens, cost, rate)."""
    extensions: list[Any] = [
        OperationMetrics(metrics),
        OperationPhases,
        ErrorCodes,
        MaxTokensLimiter(max_token_count=settings.max_tokens),
        # Strawberry's depth and alias limiters' rules with the cost rule, added in one hook
        # rather than three (each runs for every request).
        AddValidationRules([
            *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
            cost_rule(settings.max_cost, settings.max_matches),
        ]),
        RateLimit(limiter),
        SubscriptionsNeedWebSocket,
        # Clients send the same few operations: parse and validate each once (bounded LRU caches
        # keyed by the text and parser options, then by the parsed document and the rules, so
        # the token, depth, alias and cost limits still apply).
        ParsedOperationCache,
        ValidatedOperationCache,
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=PlainFieldExecution,
        config=StrawberryConfig(name_converter=_NameConverter()),
    )
