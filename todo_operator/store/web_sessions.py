"""The web page's sessions and pending sign-ins, in PostgreSQL (migration 0007).

A session id and a sign-in's ``state`` are random secrets that the browser
holds; only their SHA-256 is stored, here, by construction: every function
takes the secret and hashes it itself. A sign-in is taken once (DELETE ...
RETURNING), so a replayed authorization response finds nothing; a session
ends for every replica the moment its row is gone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from todo_operator.store.repository import Repository


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, kw_only=True)
class WebSession:
    owner: str
    is_admin: bool
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class PendingSignIn:
    code_verifier: str
    return_to: str


class WebSessions(Repository):
    async def open(
        self,
        session_id: str,
        *,
        owner: str,
        is_admin: bool,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        async with self._connection() as connection:
            # Sign-in is rare: a good moment to forget the sessions and sign-ins that have ended.
            await connection.execute("DELETE FROM web_sessions WHERE expires_at < %s", (now,))
            await connection.execute("DELETE FROM web_sign_ins WHERE expires_at < %s", (now,))
            await connection.execute(
                "INSERT INTO web_sessions (id_hash, owner, is_admin, csrf_token, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (_digest(session_id), owner, is_admin, csrf_token, now, expires_at),
            )

    async def find(self, session_id: str, *, now: datetime) -> WebSession | None:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT owner, is_admin, csrf_token, expires_at FROM web_sessions"
                " WHERE id_hash = %s AND expires_at > %s",
                (_digest(session_id), now),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        owner, is_admin, csrf_token, expires_at = row
        return WebSession(owner=owner, is_admin=is_admin, csrf_token=csrf_token, expires_at=expires_at)

    async def close(self, session_id: str) -> None:
        async with self._connection() as connection:
            await connection.execute("DELETE FROM web_sessions WHERE id_hash = %s", (_digest(session_id),))

    async def begin_sign_in(
        self, state: str, *, code_verifier: str, return_to: str, expires_at: datetime
    ) -> None:
        async with self._connection() as connection:
            await connection.execute(
                "INSERT INTO web_sign_ins (state_hash, code_verifier, return_to, expires_at)"
                " VALUES (%s, %s, %s, %s)",
                (_digest(state), code_verifier, return_to, expires_at),
            )

    async def take_sign_in(self, state: str, *, now: datetime) -> PendingSignIn | None:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM web_sign_ins WHERE state_hash = %s"
                " RETURNING code_verifier, return_to, expires_at",
                (_digest(state),),
            )
            row = await cursor.fetchone()
        if row is None or row[2] <= now:
            return None
        return PendingSignIn(code_verifier=row[0], return_to=row[1])
