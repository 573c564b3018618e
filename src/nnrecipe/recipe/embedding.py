"""What a learned representation looks like: PCA, t-SNE / UMAP, k-means and k-NN on features F [N, D].

All of it is scikit-learn's (UMAP is umap-learn's, used only when it is installed):
- PCA (full SVD): ``explained_variance`` = λ_i / Σ_j λ_j of the first min(10, N, D) components,
  λ the eigenvalues of the covariance of F (Pearson 1901).
- t-SNE (van der Maaten & Hinton 2008): 2-D, perplexity min(30, (N − 1) / 3), PCA initialization,
  seeded; UMAP (McInnes et al. 2018) with its defaults and the same seed.
- k-means (Lloyd, k-means++ initialization, 10 restarts) for k = 2 … min(10, N − 1); the k kept
  maximizes the silhouette s = mean_i (b_i − a_i) / max(a_i, b_i) (Rousseeuw 1987; a_i the mean
  distance of row i to its own cluster, b_i to the nearest other one).
- ARI (Hubert & Arabie 1985): the adjusted Rand index of the clusters against the labels.
- k-NN accuracy: a Euclidean ``neighbors``-NN classifier, stratified K-fold cross-validated
  accuracy (K = 5, fewer when the smallest class has fewer rows; shuffled with the seed): how well
  the classes separate locally in the representation.
"""

from __future__ import annotations

import numpy as np

MAX_COMPONENTS = 10  # explained-variance ratios reported
MAX_CLUSTERS = 10
FOLDS = 5


def explained_variance(F: np.ndarray) -> list[float]:
    from sklearn.decomposition import PCA

    n = min(MAX_COMPONENTS, *F.shape)
    return [float(v) for v in PCA(n, svd_solver="full").fit(F).explained_variance_ratio_]


def pca_2d(F: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    if F.shape[1] == 1:
        return np.hstack([F, np.zeros_like(F)])
    return PCA(2, svd_solver="full").fit_transform(F)


def tsne_2d(F: np.ndarray, *, seed: int) -> tuple[np.ndarray, float]:
    """(t-SNE coordinates [N, 2], the perplexity used)."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (len(F) - 1) / 3))
    return TSNE(2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(F), perplexity


def umap_2d(F: np.ndarray, *, seed: int) -> np.ndarray | None:
    """UMAP coordinates, or None when umap-learn is not installed (it is not a dependency)."""
    try:
        import umap
    except ImportError:
        return None
    return umap.UMAP(n_components=2, random_state=seed).fit_transform(F)


def clusters(F: np.ndarray, *, seed: int) -> tuple[int, np.ndarray, dict[int, float]]:
    """(k, cluster of each row, silhouette of each k tried): k-means with k chosen by silhouette."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    scores, assignments = {}, {}
    for k in range(2, min(MAX_CLUSTERS, len(F) - 1) + 1):
        found = KMeans(k, n_init=10, random_state=seed).fit_predict(F)
        if len(np.unique(found)) < 2:  # duplicated rows: fewer distinct clusters than asked
            continue
        scores[k], assignments[k] = float(silhouette_score(F, found)), found
    if not scores:
        return 1, np.zeros(len(F), dtype=np.int64), {}
    best = max(scores, key=scores.get)
    return best, assignments[best], scores


def adjusted_rand(labels: np.ndarray, found: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(labels, found))


def knn_folds(labels: np.ndarray) -> int:
    """Folds of the k-NN score: 5, or the smallest class's size when smaller (0: not measurable)."""
    smallest = np.unique(labels, return_counts=True)[1].min()
    return int(min(FOLDS, smallest)) if smallest >= 2 and len(np.unique(labels)) >= 2 else 0


def knn_accuracy(F: np.ndarray, labels: np.ndarray, *, neighbors: int, folds: int, seed: int) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(neighbors), F, labels, cv=cv).mean())
