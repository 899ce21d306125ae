"""ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1), for exactly what Standby's shipped
policy uses, evaluated strictly; anything more is refused when the policy is created, so the lab
never stores a policy it would silently not enforce.

Supported, as the real apiserver does it:

* the policy: ``failurePolicy`` (``Fail`` or ``Ignore``), ``matchConstraints.resourceRules``
  (``apiGroups``, ``apiVersions``, ``operations``, ``resources``; ``*`` allowed), ``matchConditions``,
  ``variables`` and ``validations`` (``expression``, ``message``, ``reason``);
* the binding: ``policyName`` and ``validationActions: [Deny]``;
* CEL: string literals (no escapes), list literals, ``request``, ``object``, ``oldObject`` (null on
  CREATE and DELETE respectively) and ``variables``, field selection, ``has(x.f)``, ``==``, ``!=``,
  ``in`` (a list), ``!``, ``&&``, ``||`` and parentheses. A missing field or a select on null is an
  error; ``&&`` and ``||`` absorb an error when the other side decides, as CEL does; an error in a
  match condition or a validation follows ``failurePolicy``.

Not supported (refused with 422 when the policy or binding is stored): ``paramKind``/``paramRef``,
``matchResources``, ``namespaceSelector``/``objectSelector``, ``resourceNames``, ``excludeResourceRules``,
``messageExpression``, ``auditAnnotations``, the ``Warn``/``Audit`` actions, and every other CEL
construct (numbers, ternaries, macros, functions, indexing, maps).

A denial is the real Status: ``<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with
binding '<b>' denied request: <message>`` (403 for reason ``Forbidden``, 422 otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.kubeapi.errors import ApiError

GROUP = "admissionregistration.k8s.io"
ROOTS = ("request", "object", "oldObject", "variables")
_POLICY_FIELDS = {"failurePolicy", "matchConstraints", "matchConditions", "variables", "validations"}
_RULE_FIELDS = {"apiGroups", "apiVersions", "operations", "resources"}
_VALIDATION_FIELDS = {"expression", "message", "reason"}
_TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|[!().,\[\]])|'([^'\\]*)'|\"([^\"\\]*)\"|([A-Za-z_][A-Za-z0-9_]*))")


class Unsupported(ValueError):
    """A policy (or expression) that uses more than this module evaluates."""


@dataclass(frozen=True)
class Err:
    """A CEL evaluation error (a value, so ``&&`` and ``||`` can absorb it)."""

    message: str


Env = dict[str, Any]
Node = Callable[[Env], Any]


# ------------------------------------------------------------------------------------------ CEL subset
def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Unsupported(f"CEL at {text[pos : pos + 20]!r} is not supported by the lab's apiserver")
        op, single, double, ident = m.groups()
        if op is not None:
            out.append(("op", op))
        elif single is not None or double is not None:
            out.append(("str", single if single is not None else double))
        else:
            out.append(("id", ident))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Unsupported(f"CEL {self.text!r}: expected {value or 'more'} at token {self.i}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise Unsupported(f"CEL {self.text!r}: unsupported {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            node = _or(node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.rel()
        while self.peek() == ("op", "&&"):
            self.take()
            node = _and(node, self.rel())
        return node

    def rel(self) -> Node:
        left = self.unary()
        tok = self.peek()
        if tok in (("op", "=="), ("op", "!=")):
            self.take()
            return _equals(left, self.unary(), negate=tok == ("op", "!="))
        if tok == ("id", "in"):
            self.take()
            return _in(left, self.unary())
        return left

    def unary(self) -> Node:
        if self.peek() == ("op", "!"):
            self.take()
            return _not(self.unary())
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while self.peek() == ("op", "."):
            self.take()
            kind, name = self.take()
            if kind != "id":
                raise Unsupported(f"CEL {self.text!r}: a field name must follow '.'")
            node = _select(node, name, test=False)
        return node

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "str":
            return lambda env, v=value: v  # type: ignore[misc]
        if (kind, value) == ("op", "("):
            node = self.or_()
            self.take(")")
            return node
        if (kind, value) == ("op", "["):
            items: list[Node] = []
            if self.peek() != ("op", "]"):
                items.append(self.or_())
                while self.peek() == ("op", ","):
                    self.take()
                    items.append(self.or_())
            self.take("]")
            return lambda env: _first_err([item(env) for item in items])
        if kind == "id" and value == "has":
            self.take("(")
            target = self.primary_path()
            self.take(")")
            return target
        if kind == "id" and value in ROOTS:
            return lambda env, v=value: env.get(v)  # type: ignore[misc]
        raise Unsupported(f"CEL {self.text!r}: {value!r} is not supported by the lab's apiserver")

    def primary_path(self) -> Node:
        """The argument of ``has()``: ``root.f1...fn`` (n >= 1); only the last select is tested."""
        kind, value = self.take()
        if kind != "id" or value not in ROOTS:
            raise Unsupported(f"CEL {self.text!r}: has() takes a field selection")
        node: Node = lambda env, v=value: env.get(v)  # type: ignore[misc]  # noqa: E731
        names: list[str] = []
        while self.peek() == ("op", "."):
            self.take()
            k, name = self.take()
            if k != "id":
                raise Unsupported(f"CEL {self.text!r}: a field name must follow '.'")
            names.append(name)
        if not names:
            raise Unsupported(f"CEL {self.text!r}: has() takes a field selection")
        for name in names[:-1]:
            node = _select(node, name, test=False)
        return _select(node, names[-1], test=True)


def _first_err(values: list[Any]) -> Any:
    return next((v for v in values if isinstance(v, Err)), values)


def _select(node: Node, name: str, *, test: bool) -> Node:
    def run(env: Env) -> Any:
        value = node(env)
        if isinstance(value, Err):
            return value
        if not isinstance(value, dict):
            return Err(f"no such key: {name} (on {'null' if value is None else type(value).__name__})")
        if test:
            return name in value
        return value[name] if name in value else Err(f"no such key: {name}")

    return run


def _bool(value: Any) -> bool | Err:
    if isinstance(value, Err | bool):
        return value
    return Err(f"no matching overload: expected bool, got {type(value).__name__}")


def _and(left: Node, right: Node) -> Node:
    def run(env: Env) -> Any:
        a, b = _bool(left(env)), _bool(right(env))
        if a is False or b is False:
            return False
        return a if isinstance(a, Err) else b

    return run


def _or(left: Node, right: Node) -> Node:
    def run(env: Env) -> Any:
        a, b = _bool(left(env)), _bool(right(env))
        if a is True or b is True:
            return True
        return a if isinstance(a, Err) else b

    return run


def _not(node: Node) -> Node:
    def run(env: Env) -> Any:
        value = _bool(node(env))
        return value if isinstance(value, Err) else not value

    return run


def _equals(left: Node, right: Node, *, negate: bool) -> Node:
    def run(env: Env) -> Any:
        a, b = left(env), right(env)
        for v in (a, b):
            if isinstance(v, Err):
                return v
        return (a == b) != negate

    return run


def _in(left: Node, right: Node) -> Node:
    def run(env: Env) -> Any:
        a, b = left(env), right(env)
        for v in (a, b):
            if isinstance(v, Err):
                return v
        if not isinstance(b, list):
            return Err("no matching overload for 'in': the right side is not a list")
        return a in b

    return run


def compile_expression(text: str) -> Node:
    """Parse a CEL expression of the supported subset; :class:`Unsupported` otherwise."""
    return _Parser(str(text)).parse()


# ------------------------------------------------------------------------------------------ policies
@dataclass(frozen=True)
class Policy:
    """A compiled ValidatingAdmissionPolicy."""

    name: str
    fail_closed: bool
    rules: tuple[dict[str, Any], ...]
    conditions: tuple[tuple[str, Node], ...]
    variables: tuple[tuple[str, Node], ...]
    validations: tuple[tuple[str, Node, str, str], ...]  # expression, node, message, reason


def _only(where: str, obj: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise Unsupported(f"{where}: {', '.join(extra)} not supported by the lab's apiserver")


def compile_policy(obj: dict[str, Any]) -> Policy:
    """Check and compile a policy; :class:`Unsupported` names what the lab cannot enforce."""
    name = str((obj.get("metadata") or {}).get("name"))
    spec = obj.get("spec") or {}
    _only("spec", spec, _POLICY_FIELDS)
    failure = spec.get("failurePolicy", "Fail")
    if failure not in ("Fail", "Ignore"):
        raise Unsupported(f"spec.failurePolicy {failure!r}")
    constraints = spec.get("matchConstraints") or {}
    _only("spec.matchConstraints", constraints, {"resourceRules"})
    rules = tuple(constraints.get("resourceRules") or ())
    for rule in rules:
        _only("spec.matchConstraints.resourceRules[]", rule, _RULE_FIELDS)
    conditions = tuple(
        (str(c["name"]), compile_expression(c["expression"])) for c in spec.get("matchConditions") or ()
    )
    variables = tuple(
        (str(v["name"]), compile_expression(v["expression"])) for v in spec.get("variables") or ()
    )
    validations = []
    for v in spec.get("validations") or ():
        _only("spec.validations[]", v, _VALIDATION_FIELDS)
        validations.append(
            (
                str(v["expression"]),
                compile_expression(v["expression"]),
                str(v.get("message") or f"failed expression: {v['expression']}"),
                str(v.get("reason") or "Invalid"),
            )
        )
    return Policy(name, failure == "Fail", rules, conditions, variables, tuple(validations))


def check_binding(obj: dict[str, Any]) -> None:
    """Refuse a binding this module cannot enforce as written."""
    spec = obj.get("spec") or {}
    _only("spec", spec, {"policyName", "validationActions"})
    if spec.get("validationActions") != ["Deny"]:
        raise Unsupported(f"spec.validationActions {spec.get('validationActions')!r} (only [Deny])")


def check_stored(kind: str, obj: Any) -> None:
    """422 for a policy or binding the lab cannot enforce (called before it is stored)."""
    if not isinstance(obj, dict):
        return
    try:
        if kind == "ValidatingAdmissionPolicy":
            compile_policy(obj)
        elif kind == "ValidatingAdmissionPolicyBinding":
            check_binding(obj)
    except (Unsupported, KeyError, TypeError) as exc:
        name = (obj.get("metadata") or {}).get("name")
        raise ApiError(
            422, f'{kind}.admissionregistration.k8s.io "{name}" is invalid: {exc}', reason="Invalid"
        ) from None


def _matches(rule: dict[str, Any], group: str, version: str, resource: str, operation: str) -> bool:
    def has(field: str, value: str) -> bool:
        items = rule.get(field) or ()
        return "*" in items or value in items

    return (
        has("apiGroups", group)
        and has("apiVersions", version)
        and has("resources", resource)
        and has("operations", operation)
    )


@dataclass(frozen=True)
class Review:
    """One write as admission sees it."""

    group: str
    version: str
    resource: str
    operation: str  # CREATE, UPDATE or DELETE
    name: str
    namespace: str
    username: str
    groups: tuple[str, ...]
    obj: dict[str, Any] | None
    old: dict[str, Any] | None


def admit(policies: list[dict[str, Any]], bindings: list[dict[str, Any]], review: Review) -> None:
    """Raise the real apiserver's denial when a bound policy that matches ``review`` refuses it."""
    by_name = {str((p.get("metadata") or {}).get("name")): p for p in policies}
    request = {
        "operation": review.operation,
        "name": review.name,
        "namespace": review.namespace,
        "userInfo": {"username": review.username, "groups": list(review.groups)},
        "resource": {"group": review.group, "version": review.version, "resource": review.resource},
    }
    for binding in bindings:
        spec = binding.get("spec") or {}
        raw = by_name.get(str(spec.get("policyName")))
        if raw is None:
            continue
        policy = compile_policy(raw)
        if not any(
            _matches(r, review.group, review.version, review.resource, review.operation) for r in policy.rules
        ):
            continue
        env: Env = {"request": request, "object": review.obj, "oldObject": review.old}
        failure = ""
        matched = True
        for cname, node in policy.conditions:
            value = _bool(node(env))
            if isinstance(value, Err):
                failure = f"failed to evaluate match condition {cname}: {value.message}"
                break
            if value is False:
                matched = False
                break
        if not matched:
            continue
        denied: tuple[str, str] | None = None
        if not failure:
            env["variables"] = {vname: node(env) for vname, node in policy.variables}
            for expression, node, message, reason in policy.validations:
                value = _bool(node(env))
                if isinstance(value, Err):
                    failure = f"expression '{expression}' resulted in error: {value.message}"
                    break
                if value is False:
                    denied = (message, reason)
                    break
        if failure and policy.fail_closed:
            denied = (failure, "Invalid")
        if denied is not None:
            message, reason = denied
            bname = (binding.get("metadata") or {}).get("name")
            head = f"{review.resource}.{review.group}" if review.group else review.resource
            text = (
                f"{head} \"{review.name}\" is forbidden: ValidatingAdmissionPolicy '{policy.name}' with binding"
                f" '{bname}' denied request: {message}"
            )
            code = 403 if reason == "Forbidden" else 422
            raise ApiError(code, text, reason=reason)
