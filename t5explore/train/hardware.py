"""Device facts for result.json and MFU: what we ran on, and its peak dense bf16 FLOP/s if known."""

from __future__ import annotations

import jax

# Dense bf16 peak FLOP/s per device from the vendors' data sheets (no sparsity).
PEAK_BF16_FLOPS = (
    ("h200", 989e12),
    ("h100", 989e12),  # SXM; the PCIe card is 756 TFLOP/s, matched first below
    ("a100", 312e12),
)


def peak_flops_per_device(device_kind: str | None = None) -> float | None:
    """Peak bf16 FLOP/s of one device, or None when unknown (CPUs: MFU is not reported)."""
    kind = (device_kind if device_kind is not None else jax.devices()[0].device_kind).lower()
    if "h100" in kind and "pcie" in kind:
        return 756e12
    for name, flops in PEAK_BF16_FLOPS:
        if name in kind:
            return flops
    return None


def device_info() -> dict:
    dev = jax.devices()
    return {"platform": dev[0].platform, "count": len(dev), "kind": dev[0].device_kind}


def model_flops_utilization(flops_per_s: float | None) -> float | None:
    """Achieved model FLOP/s over the devices' peak; None if either is unknown."""
    peak = peak_flops_per_device()
    if flops_per_s is None or peak is None:
        return None
    return flops_per_s / (peak * len(jax.devices()))
