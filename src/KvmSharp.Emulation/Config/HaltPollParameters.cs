// SPDX-License-Identifier: MIT
using System.Globalization;

namespace KvmSharp.Emulation;

/// <summary>
/// virt/kvm/kvm_main.c's halt-polling module parameters (/sys/module/kvm/parameters/halt_poll_ns*): the default
/// maximum poll time of a VM that did not enable KVM_CAP_HALT_POLL (<c>halt_poll_ns</c>, KVM_HALT_POLL_NS_DEFAULT of
/// the arch), the factor and start value grow_halt_poll_ns uses, and the divisor shrink_halt_poll_ns uses (0 resets
/// the vCPU's poll time to 0). The emulator reads them once, when the kernel is made; the real parameters are 0644 and
/// read at every halt (READ_ONCE).
/// </summary>
/// <param name="HaltPollNs"><c>halt_poll_ns</c>.</param>
/// <param name="Grow"><c>halt_poll_ns_grow</c>.</param>
/// <param name="GrowStart"><c>halt_poll_ns_grow_start</c>.</param>
/// <param name="Shrink"><c>halt_poll_ns_shrink</c>.</param>
public sealed record HaltPollParameters(uint HaltPollNs, uint Grow, uint GrowStart, uint Shrink)
{
    /// <summary>
    /// x86 in 6.18: arch/x86/include/asm/kvm_host.h KVM_HALT_POLL_NS_DEFAULT 200000; kvm_main.c halt_poll_ns_grow 2,
    /// halt_poll_ns_grow_start 10000 ("10us"), halt_poll_ns_shrink 2 ("Default halves per-vcpu halt_poll_ns").
    /// </summary>
    public static HaltPollParameters X86Default { get; } = new(200_000, 2, 10_000, 2);

    /// <summary>arm64 in 6.18: arch/arm64/include/asm/kvm_host.h KVM_HALT_POLL_NS_DEFAULT 500000; the rest as x86.</summary>
    public static HaltPollParameters Arm64Default { get; } = new(500_000, 2, 10_000, 2);

    /// <summary>The directory the kvm module's parameters are in.</summary>
    public const string HostParameterDirectory = "/sys/module/kvm/parameters";

    private static readonly Lazy<HaltPollParameters?> s_host = new(() => ReadFrom(HostParameterDirectory, X86Default));

    /// <summary>
    /// This machine's kvm module parameters (read once), each missing or unreadable one x86's default; null when the
    /// directory has none of them (no kvm module).
    /// </summary>
    public static HaltPollParameters? Host => s_host.Value;

    /// <summary>The four parameters read from <paramref name="directory"/>, <paramref name="fallback"/>'s for a missing one; null when all are missing.</summary>
    public static HaltPollParameters? ReadFrom(string directory, HaltPollParameters fallback)
    {
        uint? p = Read(directory, "halt_poll_ns"), g = Read(directory, "halt_poll_ns_grow");
        uint? gs = Read(directory, "halt_poll_ns_grow_start"), s = Read(directory, "halt_poll_ns_shrink");
        if (p is null && g is null && gs is null && s is null) return null;
        return new HaltPollParameters(p ?? fallback.HaltPollNs, g ?? fallback.Grow, gs ?? fallback.GrowStart, s ?? fallback.Shrink);
    }

    private static uint? Read(string directory, string name)
    {
        try
        {
            string text = File.ReadAllText(Path.Combine(directory, name)).Trim();
            return uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
