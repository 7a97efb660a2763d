"""The API reference for prior authors (``docs/priors/api.md``), written from the docstrings and signatures of
the objects a prior plugin uses: ``Prior``, ``PriorConfig``, ``PriorBatch``, ``BatchShape``, ``Task``,
``Reference``, the hyperprior types, and the public Numba blocks. ``pfnforge priors api --out FILE`` writes it;
a test keeps the committed page equal to what the code says.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import itertools
from typing import Any

SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("The prior API", "pfnforge.prior", ("Prior", "PriorConfig", "BatchShape", "Task", "Reference")),
    ("The batch", "pfnforge.batch", ("PriorBatch",)),
    ("Hyperprior types (config fields drawn per dataset)", "pfnforge.hyperpriors",
     ("Scale", "Range", "IntRange", "Choice", "Gamma")),
    ("Errors", "pfnforge.errors", ("ConfigError",)),
)
BLOCK_MODULES = ("covariance", "linalg", "dense", "fastexp", "mlp", "tabular", "tree")
"""``pfnforge.blocks.*``: the Numba building blocks, documented by their public functions."""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "(no docstring)")


def _signature(obj: Any) -> str:
    target = getattr(obj, "py_func", obj)  # a Numba dispatcher documents its Python function
    try:
        return str(inspect.signature(target)).replace("'", "")  # postponed annotations read as written
    except (TypeError, ValueError):
        return "(...)"


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal under a field), read from the class source."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body, docs = tree.body[0].body, {}
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name):
                docs[target.id] = " ".join(after.value.value.split())
    return docs


def _class(name: str, cls: type) -> list[str]:
    lines = [f"### `{name}`", "", _doc(cls), ""]
    docs = _field_docs(cls)
    if issubclass(cls, enum.Enum):
        lines += [f"- `{member.name}`" + (f": {docs[member.name]}" if member.name in docs else "") for member in cls]
        return [*lines, ""]
    if dataclasses.is_dataclass(cls) and dataclasses.fields(cls):
        for field in dataclasses.fields(cls):
            kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
            lines.append(f"- `{field.name}: {kind}`" + (f": {docs[field.name]}" if field.name in docs else ""))
        lines.append("")
    for attribute, value in vars(cls).items():
        if attribute.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        function = value.fget if isinstance(value, property) else value
        signature = "" if isinstance(value, property) else _signature(function)
        lines += [f"- `{attribute}{signature}`: " + " ".join(_doc(function).split())]
    return [*lines, ""]


def render() -> str:
    """The whole page as Markdown."""
    lines = ["# API reference for prior authors", "",
             "Written by `pfnforge priors api --out docs/priors/api.md` from the docstrings; `pfnforge priors new "
             "NAME` writes a plugin that uses these, and `pfnforge priors check NAME` runs the contract on it.", ""]
    for title, module_name, names in SECTIONS:
        module = importlib.import_module(module_name)
        lines += [f"## {title} (`{module_name}`)", ""]
        for name in names:
            lines += _class(name, getattr(module, name))
    lines += ["## Numba blocks (`pfnforge.blocks`)", "",
              "Compiled with `numba.njit(cache=True)`; call them from your own `@njit` kernels or from Python.", ""]
    for short in BLOCK_MODULES:
        module = importlib.import_module(f"pfnforge.blocks.{short}")
        lines += [f"### `pfnforge.blocks.{short}`", "", " ".join(_doc(module).split()), ""]
        for name, obj in vars(module).items():
            function = getattr(obj, "py_func", obj)
            if name.startswith("_") or not inspect.isfunction(function) or function.__module__ != module.__name__:
                continue
            lines.append(f"- `{name}{_signature(obj)}`: " + " ".join(_doc(function).split()))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
