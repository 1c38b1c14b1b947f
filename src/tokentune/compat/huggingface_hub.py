"""huggingface_hub internals (checked by tests/compat/test_huggingface_hub.py)."""
from __future__ import annotations

import functools


@functools.cache
def fail_at_first_connection_error() -> None:
    """Requests to the hub that cannot connect fail at once, instead of after huggingface_hub's
    back-off: it tries a file once, then (nothing cached) five more times, 1 + 2 + 4 + 8 + 8 s
    apart, so that an unreachable hub took 37 s and eleven log lines to report.

    The hub's shared client (set_client_factory) gets a transport that turns a connection that
    could not be made (refused, no route, no DNS, a connect timeout) into OfflineModeIsEnabled,
    which huggingface_hub neither retries nor hides: it reports the file as not cached and not
    reachable. Errors once connected (a read timeout, a 5xx) are still retried."""
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub import set_client_factory
    from huggingface_hub.errors import OfflineModeIsEnabled
    from huggingface_hub.utils._http import default_client_factory

    class FailFast(httpx2.BaseTransport):
        def __init__(self, inner: httpx2.BaseTransport):
            self.inner = inner

        def handle_request(self, request):
            try:
                return self.inner.handle_request(request)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as err:
                raise OfflineModeIsEnabled(f"cannot connect to {request.url.host}: {err}") from err

        def close(self) -> None:
            self.inner.close()

    def client() -> httpx2.Client:
        made = default_client_factory()
        made._transport = FailFast(made._transport)
        return made

    set_client_factory(client)
