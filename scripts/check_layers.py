#!/usr/bin/env python3
"""Checks the crate's module graph: no import circles, and no import from a
lower layer up to a higher one.

The graph is read from the `crate::…` and `super::…` paths of every module
under `src/` (test modules left out). The layers, from the top:

  ways in   startup, cli (and lib.rs / main.rs)
  http      routes, browser, error, state, openapi
  services  sessions, admin, clients, oauth, throttle, audit, tokens, keys,
            password, transfer
  storage   store
  beside    configuration, domain, clock, metrics, telemetry

A module may import its own layer or any below; every layer may import the
"beside" modules, which import only each other. A module not placed in a
layer is an error too, so that a new one gets a place.

Usage: scripts/check_layers.py [SRC_DIR] [-v]   (-v prints every edge)
"""

import os
import re
import sys

LAYERS = [
    ("ways in", 5, ["crate", "startup", "cli"]),
    ("http", 4, ["routes", "browser", "error", "state", "openapi"]),
    (
        "services",
        3,
        ["sessions", "admin", "clients", "oauth", "throttle", "audit", "tokens", "keys",
         "password", "transfer"],
    ),
    ("storage", 2, ["store"]),
    ("beside", 0, ["configuration", "domain", "clock", "metrics", "telemetry"]),
]


def modules(root):
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            found["::".join(parts) or "crate"] = path
    return found


def edges_of(found):
    names = set(found)

    def resolve(segments):
        for k in range(len(segments), 0, -1):
            candidate = "::".join(segments[:k])
            if candidate in names:
                return candidate
        return None

    edges = {module: set() for module in found}
    for module, path in found.items():
        text = open(path, encoding="utf-8").read()
        test_module = text.find("#[cfg(test)]\nmod tests")
        if test_module >= 0:
            text = text[:test_module]
        text = re.sub(r"//.*", "", text)
        here = [] if module == "crate" else module.split("::")
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)(::\{([^;]*?)\})?", text, re.S):
            base = here[:-1] if m.group(1) == "super" else []
            head = base + [s for s in m.group(2).split("::") if s]
            targets = [head]
            for item in (m.group(4) or "").split(","):
                item = item.strip().split(" as ")[0].strip()
                if item and item != "self":
                    targets.append(head + [s for s in item.split("{")[0].split("::") if s])
            for target in targets:
                found_module = resolve(target)
                # A module and its parent contain each other: not an import.
                if found_module and found_module != module and not module.startswith(
                    found_module + "::"
                ):
                    edges[module].add(found_module)
    return edges


def cycles(edges):
    index, low, stack, on_stack, components = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(component)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return [sorted(c) for c in components if len(c) > 1]


def layer(module):
    top = module.split("::")[0]
    for name, rank, tops in LAYERS:
        if top in tops:
            return name, rank
    return None, None


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    found = modules(root)
    edges = edges_of(found)
    if "-v" in sys.argv:
        for module in sorted(edges):
            print(f"{module} -> {', '.join(sorted(edges[module]))}")
    problems = [f"circle: {', '.join(c)}" for c in cycles(edges)]
    for module in sorted(edges):
        name, rank = layer(module)
        if name is None:
            problems.append(f"no layer: {module}")
            continue
        for target in sorted(edges[module]):
            target_name, target_rank = layer(target)
            if target_name is None or target_rank == 0:
                continue
            if rank == 0 or target_rank > rank:
                problems.append(f"upward: {module} ({name}) -> {target} ({target_name})")
    print(
        f"{len(found)} modules, {sum(len(e) for e in edges.values())} imports, "
        f"{len(problems)} problems"
    )
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
