// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>
/// The kernel of one test case: this machine's /dev/kvm ("real"), or the emulated kernel built like this host
/// ("emulated", which has guest_memfd) — so a test of one backing runs wherever that backing exists: the guest_memfd
/// case of a test runs on the emulator on every host, and on the real kernel when it has guest_memfd.
/// </summary>
public sealed class TestKernel : IDisposable
{
    public const string RealName = "real";
    public const string EmulatedName = "emulated";

    private TestKernel(string name, Kvm kvm, EmulatedKernel? emulated)
    {
        Name = name;
        Kvm = kvm;
        Emulator = emulated;
    }

    public string Name { get; }

    public Kvm Kvm { get; }

    /// <summary>The emulated kernel (for its leak counters); null for the real one.</summary>
    public EmulatedKernel? Emulator { get; }

    public bool IsReal => Emulator is null;

    /// <summary>Every kernel × backing: the matrix of a test about what guest memory does.</summary>
    public static TheoryData<string, GuestMemoryBacking> KernelsAndBackings => new()
    {
        { RealName, GuestMemoryBacking.GuestMemfd },
        { RealName, GuestMemoryBacking.HostMemory },
        { EmulatedName, GuestMemoryBacking.GuestMemfd },
        { EmulatedName, GuestMemoryBacking.HostMemory },
    };

    /// <summary>Both kernels.</summary>
    public static TheoryData<string> Kernels => new() { RealName, EmulatedName };

    /// <summary>The kernel named <paramref name="name"/>; the real one skips the test (with the reason) without /dev/kvm.</summary>
    public static TestKernel Open(string name) => name switch
    {
        RealName => Real(),
        EmulatedName => Emulated(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "real or emulated"),
    };

    public static TestKernel Real()
    {
        Skip.If(KvmHost.UnavailableReason is not null, KvmHost.UnavailableReason);
        return new TestKernel(RealName, Kvm.Open(), null);
    }

    /// <summary><see cref="EmulatorConfig.LikeThisHost"/>: this machine's x86 kernel, with guest_memfd or built without it.</summary>
    public static TestKernel Emulated(bool guestMemfd = true) => Emulated(EmulatorConfig.LikeThisHost(guestMemfd),
        guestMemfd ? EmulatedName : EmulatedName + " without guest_memfd");

    /// <summary>The emulated x86_64 kernel with guest_memfd in-place conversion: the one with private memory, SNP and TDX here.</summary>
    public static TestKernel EmulatedWithInPlaceConversion() =>
        Emulated(EmulatorConfig.X86_64(inPlaceConversion: true), EmulatedName + " with in-place conversion");

    public static TestKernel Emulated(EmulatorConfig config, string name)
    {
        ArgumentNullException.ThrowIfNull(config);
        var kernel = new EmulatedKernel(config);
        try
        {
            return new TestKernel(name, Kvm.Open(kernel, proposals: config.Proposals), kernel);
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <paramref name="template"/> on this kernel with <paramref name="backing"/>; by default <see cref="GuestRun.Quick"/>
    /// (on the emulator with a 20 s limit: it interprets the guest, and a busy host must not turn that into a timeout).
    /// guest_memfd on a real kernel without it skips the test with the reason.
    /// </summary>
    public MicroVmOptions Options(GuestMemoryBacking? backing, MicroVmOptions? template = null)
    {
        if (backing == GuestMemoryBacking.GuestMemfd && IsReal) RealKernel.SkipUnlessGuestMemfd();
        template ??= IsReal ? GuestRun.Quick : GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(20) };
        return template with { Kvm = Kvm, Memory = backing };
    }

    public void Dispose()
    {
        Kvm.Dispose();
        Emulator?.Dispose();
    }

    public override string ToString() => Name;
}
