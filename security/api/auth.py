"""The API token endpoint, with failed attempts limited per username and address (``security/logins.py``)."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from security import logins


class ThrottledObtainAuthToken(ObtainAuthToken):
    """``POST /api/v1/auth/token/``: 429 once the username or address has too many failures in the window."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        username = str(data.get("username", ""))
        address = logins.client_address(request._request)
        if logins.login_refused(address=address, username=username):
            return Response({"detail": logins.REFUSED_MESSAGE}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            logins.login_failed(address=address, username=username)
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        user = serializer.validated_data["user"]
        logins.login_succeeded(address=address, username=user.get_username())
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


obtain_auth_token = ThrottledObtainAuthToken.as_view()
