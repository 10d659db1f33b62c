"""The API's common request, one JSON operation POSTed, served without Strawberry's generic
HTTP handling around it (issue 22: bench/api_cpu.py, docs/api-performance.md)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData

# Content types and Accept values that the view's generic path would treat exactly as the plain
# path does: one JSON operation answered with one JSON body (no streaming, no multipart).
_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


class PlainPostView:
    """Mixed into the Strawberry ASGI view. Strawberry's `run` parses every Content-Type
    through `email.message`, looks for streaming transports in Accept, and checks for the IDE
    and for uploads; for a POST of one JSON operation that was a fifth of GraphQL's own CPU per
    request. `plain_post` answers that request with the view's own steps (context, execution,
    result processing, response), and returns None for any other request, which `run` then
    serves as before (its body, once read, stays cached on the request)."""

    async def plain_post(self, request: Request) -> Response | None:
        view: Any = self
        headers = request.headers
        if (
            request.method != "POST"
            or headers.get("content-type", "").lower() not in _JSON
            or headers.get("accept", "").lower() not in _PLAIN_ACCEPT
        ):
            return None
        data = view.parse_json(await request.body())  # refuses what is not a JSON object
        query, variables = data.get("query"), data.get("variables")
        operation_name, extensions = data.get("operationName"), data.get("extensions")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(operation_name, str | None)
            and isinstance(extensions, dict | None)
        ):
            return None  # the generic path names what is wrong
        sub_response = await view.get_sub_response(request)
        context = await view.get_context(request, response=sub_response)
        root_value = await view.get_root_value(request)
        result = await view.execute_single(
            request=request,
            request_adapter=view.request_adapter_class(request),
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=GraphQLRequestData(
                query=query,
                variables=variables,
                operation_name=operation_name,
                extensions=extensions,
                protocol="http",
            ),
        )
        response_data = await view.process_result(request=request, result=result)
        if result.errors:
            view._handle_errors(result.errors, response_data)
        response: Response = view.create_response(response_data, sub_response)
        return response
