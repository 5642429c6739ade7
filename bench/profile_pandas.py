"""Peer for bench/profile.sh: segment profiles with pandas from the quickstart's Parquet
outputs (features and RFM assignments): per segment size, revenue share, mean / median /
std / index / z of six features, mean of every mix column and its lift."""
import sys
import pandas as pd

run = sys.argv[1]
f = pd.read_parquet(f"{run}/steps/features/main.parquet")
a = pd.read_parquet(f"{run}/steps/segments/assignments.parquet")
feats = ["recency_days", "frequency", "monetary_sum", "monetary_mean", "tenure_days", "channel_share_app"]
mix = [c for c in f.columns if "_share_" in c]
d = a[["customer_id", "segment"]].merge(f, on="customer_id", how="left")
g = d.groupby("segment")
out = g[feats].agg(["mean", "median", "std"])
base = d[feats].agg(["mean", "std"])
for c in feats:
    out[(c, "index")] = 100 * out[(c, "mean")] / base.loc["mean", c]
    out[(c, "z")] = (out[(c, "mean")] - base.loc["mean", c]) / base.loc["std", c]
lift = g[mix].mean() / d[mix].mean()
size = g.size()
rev = g["monetary_sum"].sum() / d["monetary_sum"].sum()
print(len(out), len(lift), int(size.sum()), round(float(rev.sum()), 6))
