"""Console access control: users, roles, login sessions that expire, masking of personal data.

Roles (``yibao/data/web/console.yaml``): ``bureau`` (医保局), ``institution``
(定点医药机构, sees only its own ``fixmedins_code``) and ``public`` (参保群众,
sees only their own ``psn_no``).  Passwords are stored as scrypt hashes; the
session cookie carries a random token whose SHA-256 is the table's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.engine import Engine

from yibao.codes import registry
from yibao.core import db
from yibao.core.errors import YibaoError
from yibao.core.masking import mask_middle
from yibao.core.yamldata import load_model
from yibao.web.models import ConsoleSession, ConsoleUser

CONFIG_PATH = Path(__file__).resolve().parent.parent / "data" / "web" / "console.yaml"
Role = Literal["bureau", "institution", "public"]
PAGES = ("fund", "settlement", "procurement", "payment", "supervision", "ecode", "mycode")


class AuthError(YibaoError):
    code = "E_AUTH"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleRule(_Strict):
    pages: tuple[
        Annotated[str, StringConstraints(pattern=r"^[a-z_]+$")], ...
    ]  # page names; each needs its route (console or web/pages)
    all_institutions: bool
    unmask: bool


class Mask(_Strict):
    keep_start: int = Field(ge=0)
    keep_end: int = Field(ge=0)


class SessionRule(_Strict):
    ttl_minutes: int = Field(gt=0)


class Limit(_Strict):
    max_failures: int = Field(gt=0)
    window_seconds: int = Field(gt=0, le=86_400)


class LoginLimits(_Strict):
    per_user: Limit
    per_ip: Limit


class CookieRule(_Strict):
    # auto: Secure when the request came over TLS (https, or X-Forwarded-Proto: https from a proxy)
    secure: Literal["auto", "always", "never"]


class HeaderSets(_Strict):
    all: dict[str, str]  # on every answer
    pages: dict[str, str]  # on every answer but the API documentation pages (/docs, /redoc)
    tls: dict[str, str]  # when the request came over TLS


class ConsoleConfig(_Strict):
    version: int
    session: SessionRule
    roles: dict[Role, RoleRule]
    masking: dict[str, Mask]
    list_page_rows: int = Field(gt=0)
    export_sync_max_rows: int = Field(gt=0)
    login_limits: LoginLimits
    cookies: CookieRule
    # proxies whose X-Forwarded-For names the client (for the per-IP login limit); others are the client
    trusted_proxies: tuple[str, ...] = ()
    security_headers: HeaderSets


def load_config(path: str | Path | None = None) -> ConsoleConfig:
    p = Path(path) if path else CONFIG_PATH
    return load_model(p, ConsoleConfig, what=("console parameters", "控制台参数"), error=AuthError)


@lru_cache(maxsize=1)
def default_config() -> ConsoleConfig:
    return load_config()


def mask(value: str | None, rule: Mask) -> str:
    """``990101199001010011`` → ``990101********0011``: keep the ends, star the middle (at least one star)."""
    return mask_middle(value, rule.keep_start, rule.keep_end)


# --- passwords ----------------------------------------------------------------------------

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${h.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, h = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(h) // 2
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), h)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check unknown users' passwords against, so that they take as long as known users'."""
    return hash_password(secrets.token_urlsafe(16))


# --- login rate limits ------------------------------------------------------------------------


class LoginThrottled(AuthError):
    """Too many failed logins for this user name or from this address: wait."""

    code = "E_AUTH_THROTTLED"

    def __init__(self, retry_after: int, field: str):
        super().__init__(
            f"too many failed logins; try again in {retry_after} s",
            f"登录失败次数过多, 请 {retry_after} 秒后再试",
            field=field,
        )
        self.retry_after = retry_after


class LoginLimiter:
    """Failed logins per user name and per client address in a sliding window (this process's memory).

    While a key is over its limit every login for it is refused *before* the password is checked, so
    guessing cannot go on; a success clears the user name's failures.  Several worker processes each
    count their own (the limit is then per worker): a shared store is the next step for a farm.
    """

    def __init__(self, limits: LoginLimits):
        import threading
        from collections import deque

        self.limits = limits
        self._fails: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()
        self._deque = deque

    def _recent(self, key: tuple[str, str], window: int, now: float):
        q = self._fails.get(key)
        if q is None:
            return None
        while q and q[0] <= now - window:
            q.popleft()
        if not q:
            del self._fails[key]
            return None
        return q

    def check(self, username: str, ip: str, now: float) -> None:
        with self._lock:
            for kind, value, lim, fld in (
                ("user", username, self.limits.per_user, "username"),
                ("ip", ip, self.limits.per_ip, "ip"),
            ):
                q = self._recent((kind, value), lim.window_seconds, now)
                if q is not None and len(q) >= lim.max_failures:
                    raise LoginThrottled(max(1, int(q[0] + lim.window_seconds - now + 0.999)), fld)

    def failed(self, username: str, ip: str, now: float) -> None:
        with self._lock:
            for key, lim in ((("user", username), self.limits.per_user), (("ip", ip), self.limits.per_ip)):
                q = self._fails.setdefault(key, self._deque())
                q.append(now)
                while len(q) > lim.max_failures:
                    q.popleft()
            if len(self._fails) > 100_000:  # bounded memory under a spray of names: forget the oldest
                for k in list(self._fails)[: len(self._fails) // 2]:
                    del self._fails[k]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(("user", username), None)


# --- CSRF -----------------------------------------------------------------------------------------


def csrf_token(secret: str | None) -> str:
    """The CSRF token bound to a session (or pre-login) cookie: unguessable without that HttpOnly cookie."""
    if not secret:
        return ""
    return hashlib.sha256(b"yibao-console-csrf\0" + secret.encode()).hexdigest()


def csrf_ok(secret: str | None, presented: str | None) -> bool:
    want = csrf_token(secret)
    return bool(want) and isinstance(presented, str) and hmac.compare_digest(want, presented)


# --- principals and sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is asking: checked by every page and API."""

    username: str
    role: Role
    fixmedins_code: str | None
    psn_no: str | None
    display_name: str
    expires_at: dt.datetime
    rule: RoleRule

    def can(self, page: str) -> bool:
        return page in self.rule.pages

    @property
    def pages(self) -> tuple[str, ...]:
        return self.rule.pages

    def institution_scope(self) -> str | None:
        """None: every institution; else the one institution this user may see."""
        return None if self.rule.all_institutions else (self.fixmedins_code or "\0none")


class AuthService:
    def __init__(
        self, engine: Engine, config: ConsoleConfig | None = None, clock: Callable[[], dt.datetime] | None = None
    ):
        self.engine = engine
        self.cfg = config or default_config()
        self.clock = clock or (lambda: dt.datetime.now(db.SHANGHAI))
        self.limiter = LoginLimiter(self.cfg.login_limits)

    def add_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        fixmedins_code: str | None = None,
        psn_no: str | None = None,
        display_name: str = "",
    ) -> None:
        if role not in self.cfg.roles:
            raise AuthError(f"unknown role {role!r} (bureau, institution, public)", f"未知角色 {role!r}", field="role")
        if not username or len(password) < 8:
            raise AuthError(
                "username required and password of at least 8 characters", "需要用户名, 密码至少 8 位", field="password"
            )
        if role == "institution" and not fixmedins_code:
            raise AuthError(
                "institution staff need a fixmedins_code", "机构用户须指定定点医药机构编号", field="fixmedins_code"
            )
        if role == "public" and not psn_no:
            raise AuthError("a member of the public needs their psn_no", "参保群众用户须指定人员编号", field="psn_no")
        with db.session_scope(self.engine) as s:
            if role == "institution" and s.get(registry.Institution, fixmedins_code) is None:
                raise AuthError(
                    f"unknown institution {fixmedins_code!r}",
                    f"定点医药机构不存在: {fixmedins_code}",
                    field="fixmedins_code",
                )
            if role == "public" and s.get(registry.Person, psn_no) is None:
                raise AuthError(f"unknown person {psn_no!r}", f"参保人不存在: {psn_no}", field="psn_no")
            u = s.get(ConsoleUser, username)
            if u is None:
                u = ConsoleUser(username=username, created_at=self.clock())
                s.add(u)
            u.password_hash, u.role, u.fixmedins_code, u.psn_no = hash_password(password), role, fixmedins_code, psn_no
            u.display_name = display_name or username

    def login(self, username: str, password: str, *, ip: str = "") -> str:
        """A new session token; refused alike for an unknown user and a wrong password (same message, same work)."""
        now = self.clock()
        mono = now.timestamp()
        self.limiter.check(username, ip, mono)
        with db.session_scope(self.engine) as s:
            u = s.get(ConsoleUser, username) if username else None
            ok = check_password(password, u.password_hash if u is not None else _dummy_hash())
            if u is None or not ok:
                self.limiter.failed(username, ip, mono)
                raise AuthError("wrong user name or password", "用户名或密码错误", field="password")
            self.limiter.succeeded(username)
            token = secrets.token_urlsafe(32)
            s.add(
                ConsoleSession(
                    token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    username=username,
                    created_at=now,
                    expires_at=now + dt.timedelta(minutes=self.cfg.session.ttl_minutes),
                )
            )
            return token

    def principal(self, token: str | None) -> Principal | None:
        """The session's user, or None when absent, ended or expired."""
        if not token:
            return None
        now = self.clock()
        with db.session_scope(self.engine) as s:
            row = s.execute(
                select(ConsoleSession, ConsoleUser)
                .join(ConsoleUser, ConsoleUser.username == ConsoleSession.username)
                .where(ConsoleSession.token_sha256 == hashlib.sha256(token.encode()).hexdigest())
            ).first()
            if row is None:
                return None
            sess, u = row
            if sess.ended_at is not None or sess.expires_at <= now:
                return None
            return Principal(
                u.username,
                cast(Role, u.role),
                u.fixmedins_code,
                u.psn_no,
                u.display_name,
                sess.expires_at,
                self.cfg.roles[cast(Role, u.role)],
            )

    def logout(self, token: str | None) -> None:
        if not token:
            return
        with db.session_scope(self.engine) as s:
            sess = s.get(ConsoleSession, hashlib.sha256(token.encode()).hexdigest())
            if sess is not None and sess.ended_at is None:
                sess.ended_at = self.clock()


def require(*roles: str):
    """A FastAPI dependency for other routers: the console session's user, of one of ``roles`` (401 / 403 otherwise).

    ``app.include_router(router, dependencies=[Depends(require("bureau"))])`` puts a whole router behind the
    console's login; the app must have the console mounted (``app.state.console``).
    """
    from fastapi import HTTPException, Request

    def dep(request: Request) -> Principal:
        console = getattr(request.app.state, "console", None)
        if console is None:
            raise HTTPException(503, "console (access control) is not mounted")
        token = request.cookies.get("yb_session")
        p = console.auth.principal(token)
        if p is None:
            raise HTTPException(401, "login required / 请先登录")
        if roles and p.role not in roles:
            raise HTTPException(403, "forbidden / 无权访问")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(token, request.headers.get("x-csrf-token")):
            raise HTTPException(
                403, "CSRF token missing or wrong (header X-CSRF-Token, from the console page) / CSRF 令牌缺失或错误"
            )
        return p

    import inspect

    # this module uses postponed annotations; give FastAPI the real type
    dep.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # functions take it; typeshed lacks it
        [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
    )
    return dep
