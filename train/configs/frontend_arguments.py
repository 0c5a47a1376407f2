"""Each named frontend's constructor arguments and defaults, read from tf_frontends' source.

    defaults("leaf")   # {"n_filters": 40, "sample_rate": 16000, ..., "kernel_gradient": "native"}
    composition_name() # "composition": a serialized tf_frontends.Frontend(...) as the frontend

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


def composition_name() -> str:
  """The name `tf_frontends.get` builds a serialized frontend under (`COMPOSITION` in
  frontends.py)."""
  return _constant("frontends", "COMPOSITION")


def _constant(module: str, name: str):
  """The literal assigned to `name` at the top level of tf_frontends/<module>.py."""
  for node in _module(module).body:
    if (isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)):
      return ast.literal_eval(node.value)
  raise ValueError(f"no {name} = <literal> in tf_frontends/{module}.py")


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
      values[arg.arg] = _literal(module, default)
    except ValueError as error:
      raise ValueError(f"{class_name}.__init__: the default of {arg.arg} is neither a literal "
                       f"nor a package constant ({ast.unparse(default)})") from error
  return values


def _literal(module: str, node: ast.expr):
  """A default's value: a literal, or `other_module.NAME` of an imported tf_frontends module
  where NAME is assigned a literal (e.g. composition.ENERGY_FLOOR)."""
  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
    other, _ = _imported_names(_module(module)).get(node.value.id, (None, None))
    if other is not None:
      return _constant(other, node.attr)
  return ast.literal_eval(node)
