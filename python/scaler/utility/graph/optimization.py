from collections import deque
from typing import Any, Dict, List


def _dependencies(node: Any) -> List[str]:
    if isinstance(node, tuple) and len(node) > 0 and callable(node[0]):
        return list(node[1:])
    return []


def cull_graph(graph: Dict[str, Any], keys: List[str]) -> Dict[str, Any]:
    """Return the part of ``graph`` reachable from ``keys`` through call-node arguments.

    Raises KeyError for a key or dependency that is not in the graph.
    """
    seen = set()
    queue = deque()
    for key in keys:
        if key not in graph:
            raise KeyError(f"key {key!r} is not in the graph")
        if key not in seen:
            seen.add(key)
            queue.append(key)
    while queue:
        key = queue.popleft()
        for dep in _dependencies(graph[key]):
            if not isinstance(dep, str):
                continue
            if dep not in graph:
                raise KeyError(f"node {key!r} depends on {dep!r}, which is not in the graph")
            if dep not in seen:
                seen.add(dep)
                queue.append(dep)
    return {key: value for key, value in graph.items() if key in seen}
