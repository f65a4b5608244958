"""The service's own caller dependencies: bearer JWTs."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dotmac.ticketing.service.api.problems import Unauthorized
from dotmac.ticketing.service.auth import AuthError, Principal, Role, TokenVerifier
from dotmac.ticketing.service.errors import PermissionDenied

_bearer = HTTPBearer(auto_error=False, description="A JWT with tenant_id and roles")


def jwt_dependencies(
    verifier: TokenVerifier,
) -> tuple[Callable[..., Principal], Callable[..., str], Callable[..., Principal]]:
    """``(get_current_user, get_current_tenant, require_admin)`` for a verifier."""

    def get_current_user(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("an 'Authorization: Bearer <token>' header is required")
        try:
            return verifier.verify(credentials.credentials)
        except AuthError as error:
            raise Unauthorized(str(error)) from None

    def get_current_tenant(
        user: Annotated[Principal, Depends(get_current_user)],
    ) -> str:
        return user.tenant_id

    def require_admin(
        user: Annotated[Principal, Depends(get_current_user)],
    ) -> Principal:
        if not user.has_any(Role.ADMIN):
            raise PermissionDenied("configuration is for admins only")
        return user

    return get_current_user, get_current_tenant, require_admin
