"""What this machine computes fast: the one probe behind the defaults that depend on it (precision, LSTM kernel).

Training's ``--mixed_precision`` and writing's ``--precision`` both default
to bfloat16 where the CPU computes it natively, and to float32 elsewhere:
without native support oneDNN emulates bf16, and a bf16 training step ran
at 0.2x the float32 rate (332 against 1,626 tokens/s on an AVX2-only EPYC:
``benchmarks/train_throughput.py --variants ours_f32,ours_bf16``). With a
GPU or TPU both stay at float32 unless asked (that path is unverified here).
"""

# CPU flags of native bfloat16 arithmetic (AVX-512 BF16, AMX).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU computes bfloat16 natively (Linux's cpuinfo flags; False where unreadable)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            flags = set(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return False
    return bool(flags.intersection(NATIVE_BF16_FLAGS))


def has_accelerator():
    """Whether TensorFlow sees a GPU or TPU."""
    import tensorflow as tf  # here, so that option modules can ask without importing TensorFlow themselves

    return any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))


def bf16_is_native():
    """True on a machine without GPU or TPU whose CPU computes bfloat16 natively."""
    return not has_accelerator() and cpu_has_native_bf16()
