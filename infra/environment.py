"""Each function's environment, built from its settings model (`labelloop.settings`): exactly
the variables the model declares, taken from what the stack has; synth fails if a required one
is missing or a value is invalid, instead of the function's first request."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from labelloop.settings import Settings


def declared(model: type[Settings]) -> dict[str, bool]:
    """The variables a settings model reads -> whether it requires them."""
    return {f.alias: f.is_required() for f in model.model_fields.values()}


def environment(model: type[Settings], available: Mapping[str, str], what: str
                ) -> dict[str, str]:
    """Of `available` (every value the stack could give), those `model` declares; `what` names
    the function or task in the error. Resource values are deploy-time tokens here: strings
    that stand for the name, which the model accepts as it would the name."""
    env = {name: available[name] for name in declared(model) if name in available}
    try:
        model.model_validate(env)
    except ValidationError as err:
        raise SystemExit(f"{what}: its environment does not satisfy {model.__name__}: "
                         f"{err}") from err
    return env
