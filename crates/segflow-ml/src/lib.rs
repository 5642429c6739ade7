//! segflow's algorithms, on plain slices and Arrow arrays.
//!
//! This crate owns the numerical work of a segmentation pipeline and nothing else: it
//! knows neither the plugin SDK nor the engine. Components in `plugins/` are thin
//! adapters that parse their config, call a function here and wrap the result.
//!
//! - [`features`]: streaming per-customer transaction features (RFM, tenure, gaps) and
//!   the lifetimes-style calibration/holdout summary.
//! - [`kmeans`]: k-means (Lloyd, Hamerly, Elkan; k-means++), deterministic for a seed at
//!   any thread count.
//! - [`kprototypes`]: k-prototypes for mixed numeric and categorical data (Huang's
//!   cost with gamma; Huang or Cao starts), as the Python `kmodes` package.
//! - [`minibatch`]: mini-batch k-means (Sculley; scikit-learn's `MiniBatchKMeans`).
//! - [`metrics`]: cluster metrics as scikit-learn computes them (silhouette, exact or
//!   sampled; Calinski-Harabasz; Davies-Bouldin; dispersion; ARI; NMI).
//! - [`autok`]: choosing k for k-means (silhouette, Calinski-Harabasz, Davies-Bouldin,
//!   Kneedle elbow, gap statistic) on a seeded sample.
//! - [`gmm`]: Gaussian mixtures by EM (full or diagonal covariance, k-means start),
//!   BIC/AIC, as scikit-learn's `GaussianMixture`.
//! - [`hierarchical`]: agglomerative clustering (Ward, average, complete) as scipy's
//!   `linkage`, cut by k or distance as scikit-learn's `AgglomerativeClustering`, with
//!   sampling and nearest-centre assignment above `max_rows`.
//! - [`dbscan`]: DBSCAN on a k-d tree with scikit-learn's labels, and the k-distance
//!   curve (with a Kneedle-suggested `eps`).
//! - [`rfm`]: RFM scores by quantile bins (pandas `qcut` of first ranks) or fixed
//!   thresholds, and segment maps (the standard 11-segment R × FM grid or custom).
//! - [`cart`]: CART classification trees (Gini, scikit-learn's splits), with
//!   feature importances and leaves read as rules.
//! - [`clv`]: customer lifetime value: BG/NBD and Gamma-Gamma by maximum likelihood
//!   (as `lifetimes`), P(alive), conditional expected purchases (Gauss ₂F₁), CLV.
//! - [`conditions`]: the small condition language of rule-based segments (parser with
//!   character offsets, SQL null logic, evaluation on record batches).
//! - [`lifecycle`]: new / active / dormant / churned stages from recency and tenure.
//! - [`stability`]: seeded subsample/bootstrap resampling and Hennig's clusterwise
//!   Jaccard stability.
//! - [`stats`]: mean, population std, numpy-linear quantiles, median, MAD, mode.
//! - [`keys`]: hashed multi-column keys (group ids, duplicate detection).
//! - [`dedup`]: keep one row per key (first, last, max/min by a column).
//! - [`drift`]: feature drift between runs (PSI over quantile bins, two-sample KS).
//! - [`rules`]: casting to a declared type and row-level data-quality checks.
//! - [`impute`]: fill missing values (mean, median, mode, constant; text: mode,
//!   constant), overall or by group.
//! - [`outliers`]: IQR, z-score and robust z-score (MAD) fences; flag or clip.
//! - [`pca`]: principal component analysis of small dense matrices (one-sided Jacobi
//!   SVD), as scikit-learn's `PCA`, with optional point weights.
//! - [`encode`]: one-hot (listed or fitted categories, an `other` bucket), ordinal and
//!   frequency encoding of categorical columns.
//! - [`pseudo`]: keyed HMAC-SHA256 pseudonyms and generalisation (bands, prefixes,
//!   dates, rounding).
//! - [`scale`]: z-score, min-max and robust (median / IQR) scaling, invertible from
//!   the fitted parameters.
//! - [`transform`]: log1p, Box-Cox and Yeo-Johnson with λ by maximum likelihood
//!   (Brent's method, as scipy), optional standardisation.
//! - [`quality`]: a per-column data-quality profile (completeness, validity,
//!   uniqueness, consistency).
//! - [`profile`]: per-segment feature statistics against the base (mean, median,
//!   std, index, z) and category shares with their lift.
//! - [`shares`]: per-customer shares of categorical columns (channel or category mix).
//! - [`targeting`]: target-segment selection: min–max scored, weighted
//!   attractiveness criteria, ranking and greedy choice under size constraints.

pub mod autok;
pub mod cart;
pub mod clv;
pub mod conditions;
pub mod dbscan;
pub mod dedup;
pub mod drift;
pub mod encode;
pub mod features;
pub mod gmm;
pub mod hierarchical;
pub mod impute;
pub mod keys;
pub mod kmeans;
pub mod kprototypes;
pub mod lifecycle;
pub mod metrics;
pub mod minibatch;
pub mod outliers;
pub mod pca;
pub mod profile;
pub mod pseudo;
pub mod quality;
pub mod rfm;
pub mod rules;
pub mod scale;
pub mod shares;
pub mod stability;
pub mod stats;
pub mod targeting;
pub mod transform;
