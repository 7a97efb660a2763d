"""The random DAG of one SCM dataset: nodes in causal order, their parents, mechanisms and parameters.

Nodes ``0..N-1`` are numbered in a causal (topological) order: every parent has a smaller number than its
child, so the graph is acyclic by construction. Each node belongs to a component: the target's (0) or a
component disconnected from it (1), which makes the features read from it irrelevant to the target. In each
component the first nodes are roots; every later node draws 1..``num_parents`` parents from the earlier
nodes of its component. The target is a non-root node of component 0; the features are a random subset of
the other nodes (the rest are latent), in random column order, so some are causes of the target, some
effects, some neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from pfnforge.blocks.mlp import ACTIVATION_CODES
from pfnforge_priors.scm.config import RootDistribution, SCMConfig
from pfnforge_priors.scm.mechanisms import LOGNORMAL, MLP, NORMAL, ROOT, TREE, UNIFORM

ROOT_CODES = {RootDistribution.normal.value: NORMAL, RootDistribution.uniform.value: UNIFORM,
              RootDistribution.lognormal.value: LOGNORMAL}


@dataclass(kw_only=True, eq=False)
class SCMGraph:
    """One dataset's graph, as flat arrays a Numba kernel reads (N nodes, E edges, S splits, L leaves)."""

    parent_offsets: np.ndarray
    """(N + 1,) int64: node n's parents are ``parents[parent_offsets[n]:parent_offsets[n + 1]]``."""
    parents: np.ndarray
    """(E,) int64 parent node of each edge."""
    weights: np.ndarray
    """(E,) float64 weight of each edge (MLP mechanisms)."""
    kind: np.ndarray
    """(N,) int64 ROOT, MLP or TREE."""
    code: np.ndarray
    """(N,) int64 root distribution (ROOT_CODES) or activation (ACTIVATION_CODES) of each node."""
    gain: np.ndarray
    """(N,) float64 gain on the standardised weighted sum before the activation."""
    shift: np.ndarray
    """(N,) float64 shift added before the activation."""
    noise_std: np.ndarray
    """(N,) float64 std of each node's additive noise."""
    noise_df: np.ndarray
    """(N,) float64 degrees of freedom of a node's Student-t noise; 0 for normal noise."""
    heteroscedastic: np.ndarray
    """(N,) bool: the node's noise std varies with its first parent."""
    leader: np.ndarray
    """(N,) int64 first unit of the node's vector node (itself for a scalar node); units share parents."""
    tree_depth: np.ndarray
    """(N,) int64 depth of a tree mechanism (0 for other nodes)."""
    split_offsets: np.ndarray
    """(N + 1,) int64 offsets into ``split_input`` / ``split_row`` (2^depth - 1 splits per tree)."""
    split_input: np.ndarray
    """(S,) int64 node each split reads (one of the tree node's parents)."""
    split_row: np.ndarray
    """(S,) int64 row whose value of ``split_input`` is the split's threshold."""
    leaf_offsets: np.ndarray
    """(N + 1,) int64 offsets into ``leaf_value`` (2^depth leaves per tree)."""
    leaf_value: np.ndarray
    """(L,) float64 leaf values."""
    component: np.ndarray
    """(N,) int64 0 for the target's component, 1 for the disconnected one."""
    target: int
    """The node read as the target."""
    feature_nodes: np.ndarray
    """(num_features,) int64 node read into each feature column."""

    @property
    def num_nodes(self) -> int:
        return self.kind.shape[0]

    def parents_of(self, node: int) -> np.ndarray:
        return self.parents[self.parent_offsets[node]:self.parent_offsets[node + 1]]

    def ancestors(self, node: int) -> set[int]:
        """Every node with a directed path to ``node``, and ``node`` itself."""
        seen, stack = {node}, [node]
        while stack:
            for parent in self.parents_of(stack.pop()):
                if int(parent) not in seen:
                    seen.add(int(parent))
                    stack.append(int(parent))
        return seen


@numba.njit(cache=True)
def _choose_parents(order: np.ndarray, starts: np.ndarray, position: np.ndarray, parent_offsets: np.ndarray,
                    uniforms: np.ndarray, parents: np.ndarray) -> None:
    """Floyd's sampling without replacement: node n's k parents from the ``position[n]`` nodes before it in
    its component (``order[starts[n]:starts[n] + position[n]]``), sorted, one uniform per parent."""
    for n in range(position.shape[0]):
        lo, hi = parent_offsets[n], parent_offsets[n + 1]
        k, m = hi - lo, position[n]
        for i, j in enumerate(range(m - k, m)):
            t = int(uniforms[lo + i] * (j + 1))
            taken = False
            for q in range(lo, lo + i):
                taken = taken or parents[q] == t
            parents[lo + i] = j if taken else t
        chosen = np.sort(parents[lo:hi])
        for i in range(k):
            parents[lo + i] = order[starts[n] + chosen[i]]


def _vector_nodes(rng: np.random.Generator, cfg: SCMConfig, members: list[np.ndarray],
                  is_root: np.ndarray) -> np.ndarray:
    """(N,) the leader (first unit) of each node's vector node: after a component's roots, consecutive
    nodes form blocks of ``node_width`` units."""
    leader = np.arange(is_root.shape[0], dtype=np.int64)
    if cfg.node_width.high <= 1:
        return leader
    for nodes in members:
        rest = nodes[~is_root[nodes]]
        if len(rest) == 0:
            continue
        widths = cfg.node_width.sample(rng, len(rest))
        starts = np.cumsum(widths) - widths
        starts = starts[starts < len(rest)]
        block = np.repeat(starts, np.diff(np.append(starts, len(rest))))
        leader[rest] = rest[block]
    return leader


def sample_graph(rng: np.random.Generator, cfg: SCMConfig, *, num_features: int, num_latent: int,
                 num_roots: int, max_parents: int, irrelevant_fraction: float, target_position: float,
                 tree_fraction: float, weight_scale: float, noise_std: float, num_rows: int,
                 heteroscedastic_fraction: float = 0.0, heavy_tailed_fraction: float = 0.0) -> SCMGraph:
    """Draw one dataset's graph with the per-dataset values already drawn from their hyperpriors."""
    num_nodes = num_features + num_latent + 1
    component = (rng.random(num_nodes) < irrelevant_fraction).astype(np.int64)
    if np.count_nonzero(component == 0) < 2:  # the target needs a parent in its own component
        component[:2] = 0
    members = [np.flatnonzero(component == c) for c in (0, 1)]
    is_root = np.zeros(num_nodes, dtype=bool)
    for c, nodes in enumerate(members):
        roots = min(num_roots, len(nodes) - 1) if c == 0 else min(num_roots, len(nodes))
        is_root[nodes[:roots]] = True
    candidates = members[0][~is_root[members[0]]]
    target = int(candidates[round(target_position * (len(candidates) - 1))])

    leader = _vector_nodes(rng, cfg, members, is_root)
    kind = np.where(is_root, ROOT, np.where(rng.random(num_nodes) < tree_fraction, TREE, MLP)).astype(np.int64)
    kind = kind[leader]  # the units of a vector node are all MLP units or all trees
    activation_codes = np.asarray([ACTIVATION_CODES[a] for a in cfg.activations.options])
    root_codes = np.asarray([ROOT_CODES[d] for d in cfg.root_distribution.options])
    code = np.where(is_root, root_codes[cfg.root_distribution.sample_indices(rng, num_nodes)],
                    activation_codes[cfg.activations.sample_indices(rng, num_nodes)]).astype(np.int64)

    position = np.empty(num_nodes, dtype=np.int64)
    for nodes in members:
        position[nodes] = np.arange(len(nodes))
    position = position[leader]  # a unit's parents come from the nodes before its vector node
    wanted = rng.integers(1, max_parents, num_nodes, endpoint=True)[leader]
    num_parents = np.where(is_root, 0, np.minimum(wanted, position)).astype(np.int64)
    parent_offsets = np.concatenate([[0], np.cumsum(num_parents)]).astype(np.int64)
    parents = np.empty(parent_offsets[-1], dtype=np.int64)
    order = np.concatenate(members).astype(np.int64)  # component 0's nodes, then component 1's
    starts = np.where(component == 0, 0, len(members[0])).astype(np.int64)
    _choose_parents(order, starts, position, parent_offsets, rng.random(parent_offsets[-1]), parents)
    follower = np.flatnonzero(leader != np.arange(num_nodes))
    if len(follower):  # units after the first take the first unit's parents (same count by construction)
        counts = num_parents[follower]
        edge = np.repeat(parent_offsets[follower], counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        parents[edge + within] = parents[np.repeat(parent_offsets[leader[follower]], counts) + within]

    tree_depth = np.where(kind == TREE, cfg.tree_depth.sample(rng, num_nodes), 0).astype(np.int64)
    num_splits, num_leaves = np.where(kind == TREE, 2**tree_depth - 1, 0), np.where(kind == TREE, 2**tree_depth, 0)
    split_offsets = np.concatenate([[0], np.cumsum(num_splits)]).astype(np.int64)
    owner = np.repeat(np.arange(num_nodes), num_splits)  # the tree node each split belongs to
    pick = (rng.random(len(owner)) * num_parents[owner]).astype(np.int64)
    split_input = parents[parent_offsets[owner] + pick] if len(owner) else np.zeros(0, np.int64)

    features = rng.permutation(np.delete(np.arange(num_nodes), target))[:num_features]
    noise_df = np.zeros(num_nodes)
    if heavy_tailed_fraction > 0:
        heavy = rng.random(num_nodes) < heavy_tailed_fraction
        noise_df[heavy] = cfg.noise_df.sample(rng, int(heavy.sum()))
    heteroscedastic = np.zeros(num_nodes, dtype=bool)
    if heteroscedastic_fraction > 0:
        heteroscedastic = (rng.random(num_nodes) < heteroscedastic_fraction) & (num_parents > 0)
    return SCMGraph(
        parent_offsets=parent_offsets, parents=parents, weights=rng.standard_normal(len(parents)), kind=kind,
        code=code, gain=np.full(num_nodes, weight_scale), shift=rng.standard_normal(num_nodes),
        noise_std=noise_std * np.exp(rng.uniform(-np.log(2), np.log(2), num_nodes)), noise_df=noise_df,
        heteroscedastic=heteroscedastic, leader=leader, tree_depth=tree_depth,
        split_offsets=split_offsets, split_input=split_input.astype(np.int64),
        split_row=rng.integers(0, num_rows, len(owner)).astype(np.int64),
        leaf_offsets=np.concatenate([[0], np.cumsum(num_leaves)]).astype(np.int64),
        leaf_value=rng.standard_normal(int(num_leaves.sum())), component=component, target=target,
        feature_nodes=features.astype(np.int64))
