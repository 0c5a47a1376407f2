"""Each named frontend's constructor arguments and defaults, read from tf_frontends' source.

    defaults("leaf")   # {"n_filters": 40, "sample_rate": 16000, ..., "kernel_gradient": "native"}

Configs are data: loading one imports no TensorFlow (a config is read by tools, launchers and
tests that have no use for it). So the registry `tf_frontends.frontends.FRONTENDS` and the
`__init__` signatures of its classes are parsed with `ast`, not imported: the layers' source
stays the one place where a default is written. A signature this reader cannot evaluate (a
default that is not a literal, an argument without a default) is an error naming it.
"""
import ast
import functools
import importlib.util
import os

_PACKAGE = "tf_frontends"


def _package_dir() -> str:
  spec = importlib.util.find_spec(_PACKAGE)   # locates the package without running it
  if spec is None or not spec.submodule_search_locations:
    raise ImportError(f"{_PACKAGE} is not installed (run scripts/setup.sh)")
  return list(spec.submodule_search_locations)[0]


@functools.lru_cache(maxsize=None)
def _module(name: str) -> ast.Module:
  path = os.path.join(_package_dir(), f"{name}.py")
  with open(path, encoding="utf-8") as f:
    return ast.parse(f.read(), filename=path)


def _imported_names(tree: ast.Module) -> dict:
  """{local name: module name in the package} for `from tf_frontends[.x] import y` lines."""
  names = {}
  for node in tree.body:
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(_PACKAGE):
      for alias in node.names:
        module = node.module[len(_PACKAGE) + 1:]
        names[alias.asname or alias.name] = (module, alias.name) if module else (alias.name, None)
  return names


@functools.lru_cache(maxsize=None)
def registry() -> dict:
  """{frontend name: (module, class name)} from `FRONTENDS = {...}` in frontends.py."""
  tree = _module("frontends")
  imported = _imported_names(tree)
  for node in tree.body:
    if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        and any(isinstance(t, ast.Name) and t.id == "FRONTENDS" for t in node.targets)):
      entries = {}
      for key, value in zip(node.value.keys, node.value.values):
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
          module = imported.get(value.value.id, (value.value.id, None))[0]
          entries[ast.literal_eval(key)] = (module, value.attr)
        elif isinstance(value, ast.Name):
          entries[ast.literal_eval(key)] = imported.get(value.id, ("frontends", value.id))
        else:
          raise ValueError(f"FRONTENDS[{ast.literal_eval(key)!r}] in frontends.py is not a "
                           "class name")
      return entries
  raise ValueError("no FRONTENDS = {...} in tf_frontends/frontends.py")


def _default_value(module: str, node: ast.expr):
  """A literal, or a package constant written as `name` / `module.NAME` (`NAME = literal` at
  the top of that package module)."""
  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
    owner, attr = _imported_names(_module(module)).get(node.value.id, (None, None))[0], node.attr
  elif isinstance(node, ast.Name):
    owner, attr = _imported_names(_module(module)).get(node.id, (module, node.id))
  else:
    return ast.literal_eval(node)
  for statement in _module(owner).body if owner else ():
    if (isinstance(statement, ast.Assign) and
        any(isinstance(t, ast.Name) and t.id == attr for t in statement.targets)):
      return ast.literal_eval(statement.value)
  raise ValueError(f"no constant {attr} in tf_frontends/{owner}.py")


def _constructor(module: str, class_name: str) -> ast.FunctionDef:
  for node in _module(module).body:
    if isinstance(node, ast.ClassDef) and node.name == class_name:
      for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
          return item
  raise ValueError(f"tf_frontends/{module}.py: no {class_name}.__init__")


def defaults(name: str) -> dict:
  """{argument: default} of frontend `name`'s constructor, in signature order."""
  entries = registry()
  if name not in entries:
    raise ValueError(f"Unknown frontend {name!r}; choose one of {sorted(entries)}.")
  module, class_name = entries[name]
  init = _constructor(module, class_name)
  positional = init.args.args[1:]                     # without self
  pairs = list(zip(positional[len(positional) - len(init.args.defaults):], init.args.defaults))
  pairs += [(arg, default) for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults)]
  if len(pairs) != len(positional) + len(init.args.kwonlyargs):
    raise ValueError(f"{class_name}.__init__ has arguments without defaults")
  values = {}
  for arg, default in pairs:
    try:
      values[arg.arg] = _default_value(module, default)
    except ValueError as error:
      raise ValueError(f"{class_name}.__init__: the default of {arg.arg} is not a literal "
                       f"({ast.unparse(default)})") from error
  return values
