// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.Clock"/> and <see cref="OpKind.TscKhz"/> draw and how their results are compared. A clock is
/// never compared by value (time passes, and the kernels' clocks differ): a KVM_SET_CLOCK is followed by a
/// KVM_GET_CLOCK that must read the value set (plus the realtime elapsed, with KVM_CLOCK_REALTIME) within a bound. TSC
/// rates are drawn relative to the kernel's own host rate (2 445 406 kHz here, 1 000 000 kHz in the emulator), so
/// the same draw crosses the same 250 ppm thresholds on both.
/// </summary>
internal static class ClockOps
{
    public const int Get = 0, SetThenGet = 1, BadPointer = 2;

    /// <summary><see cref="OpKind.Clock"/>'s C bit: pad0, pad[] and host_tsc of the struct set are non-zero.</summary>
    public const ulong DirtyPads = 0x10;

    /// <summary>How far a read may lie above the value set beyond the measured time: scheduling.</summary>
    private const ulong Slack = 1_000_000_000;

    public static ulong Value(Random rng) => rng.Next(6) switch
    {
        0 => 0,
        1 => ulong.MaxValue - (ulong)rng.Next(1_000_000_000), // wraps around soon
        2 => (ulong)rng.NextInt64(),
        3 => ulong.MaxValue,
        _ => (ulong)rng.NextInt64(0, 1L << 40),
    };

    public static ulong Flags(Random rng) => rng.Next(10) switch
    {
        < 4 => 0,
        4 => KvmConstants.KVM_CLOCK_REALTIME,
        5 => (ulong)(rng.Next(8) << 1),                      // any subset of the valid flags
        6 => 1UL << rng.Next(32),                             // one bit, mostly invalid
        7 => (ulong)(uint)rng.Next(),
        _ => KvmConstants.KVM_CLOCK_TSC_STABLE | KvmConstants.KVM_CLOCK_REALTIME | KvmConstants.KVM_CLOCK_HOST_TSC,
    };

    /// <summary>realtime of a KVM_SET_CLOCK: C &amp; 3 = 0 up to 10 s ago, 1 up to 10 s ahead, 2 zero, 3 anything.</summary>
    public static ulong Realtime(int mode, ulong now, ulong random) => mode switch
    {
        0 => now - random % 10_000_000_000,
        1 => now + random % 10_000_000_000,
        2 => 0,
        _ => random,
    };

    public static ulong RealtimeNow() => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>
    /// Whether a read of <paramref name="read"/> fits a KVM_SET_CLOCK: at or above <paramref name="expected"/>, the value
    /// the kernel must have set (u64 arithmetic) by at most the measured time plus slack.
    /// </summary>
    public static string Bound(ulong read, ulong expected, ulong elapsedNs)
    {
        ulong above = unchecked(read - expected);
        return above <= elapsedNs + Slack ? "reads the value set" : $"reads {unchecked((long)above)} ns off the value set";
    }

    /// <summary>
    /// The flags of a reading, exactly: use_master_clock follows the VM's TSC generations (x86.c kvm_synchronize_tsc),
    /// which the host writes the fuzzer draws cross the same way on both kernels (<see cref="X86StateOps.Value"/>).
    /// </summary>
    public static string DescribeFlags(in kvm_clock_data data)
    {
        bool zeros = data.pad0 == 0 && data.pad[0] == 0 && data.pad[1] == 0 && data.pad[2] == 0 && data.pad[3] == 0 &&
                     (data.flags != 0 || (data.realtime == 0 && data.host_tsc == 0));
        string flags = $"flags=0x{data.flags:X}";
        return zeros ? flags : flags + " with non-zero pads";
    }

    /// <summary>The kinds of rate <see cref="Rate"/> draws.</summary>
    public const int RateKinds = 14;

    /// <summary>
    /// A KVM_SET_TSC_KHZ argument of kind <paramref name="kind"/> for a host of <paramref name="host"/> kHz: 0, the host's
    /// rate, ±1 ppm, host × (1 + ppm/10⁶) for ppm in [-2000, 2000] (both sides of the 250 ppm tolerance), half, double,
    /// absolute rates below every host (1) or at the int return value's edges (2³¹−1, 2³¹, 2³²−1), and values whose
    /// bits above 31 the kernel drops.
    /// </summary>
    public static ulong Rate(int kind, uint host, int ppm, ulong random) => kind switch
    {
        0 => 0,
        1 => host,
        2 => host + host / 1_000_000UL,                      // +1 ppm (2 kHz here, 1 kHz in the emulator)
        3 => host - host / 1_000_000UL,
        4 => (ulong)host * (ulong)(1_000_000 + ppm) / 1_000_000,
        5 => host / 2,
        6 => 2UL * host,
        7 => 1,
        8 => int.MaxValue,
        9 => 0x8000_0000,
        10 => uint.MaxValue,
        11 => (1UL << 32) + host,
        12 => (random | 1UL << 32) & ~0xFFFF_FFFFUL,           // (u32) 0: the host's rate
        _ => (1UL << 33) + (ulong)host * (ulong)(1_000_000 + ppm) / 1_000_000,
    };

    /// <summary>
    /// A KVM_GET_TSC_KHZ result: the rate this op drew (set or not), an absolute rate far from every host in hex, or
    /// relative to the host's rate in whole ppm (the host rates differ between kernels; every relative rate drawn is a
    /// whole number of ppm, truncated, which rounds back to it for hosts of 1 000 000 kHz and more).
    /// </summary>
    public static string DescribeRate(long rc, ulong set, uint host, Func<long, string> describe)
    {
        if (rc < 0 && rc >= -4095) return describe(rc);
        uint khz = (uint)rc;
        uint expected = (uint)set == 0 ? host : (uint)set;
        if (khz == expected) return "reads the rate drawn";
        if (khz < 1000 || khz >= 0x4000_0000) return $"reads 0x{khz:X}";
        long ppm = (long)Math.Round(((double)khz - host) * 1_000_000 / host);
        return $"reads the host's rate {ppm:+0;-0} ppm";
    }
}
