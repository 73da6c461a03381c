// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;
using KvmSharp.Kernel.Tracing;

namespace KvmSharp.Cli;

/// <summary>The --kernel option: the real kernel, or the emulated guest_memfd subsystem.</summary>
public enum KernelKind
{
    Linux,
    Emulated,
}

/// <summary>
/// What the user asked for on the command line. <c>Arch</c> (--arch), <c>InPlaceConversion</c>
/// (--in-place-conversion), <c>Generation</c> (--kernel-version) and <c>NoDirectMap</c> (--no-direct-map: the
/// direct-map-removal series v12, GUEST_MEMFD_FLAG_NO_DIRECT_MAP) and <c>GmemWrite</c> (--gmem-write: the guest_memfd
/// write series v7, GUEST_MEMFD_FLAG_WRITE) describe an emulated kernel; the real one is
/// whatever this machine runs. <c>Trace</c> (--trace) receives every kernel call, one line each.
/// </summary>
public sealed record KernelRequest(KernelKind Kind, Architecture? Arch = null, bool InPlaceConversion = false, KernelGeneration? Generation = null,
    TextWriter? Trace = null, bool NoDirectMap = false, bool GmemWrite = false, Emulation.Arm64.Arm64CpuModel? Arm64Cpu = null);

/// <summary>
/// A kernel to talk to, and how to describe it: <c>Module</c> is the KVM module in use (or "emulated (config)"),
/// <c>Release</c> the running kernel's release when the kernel is real.
/// </summary>
public sealed record KernelSelection(IKernel Kernel, string Module, string? Release, UapiProposals Proposals) : IDisposable
{
    // The emulated kernel owns state (its fd table, guest memory); the real one is a process-wide singleton.
    public void Dispose() => (Kernel as IDisposable)?.Dispose();
}

/// <summary>
/// The one place that turns --kernel/--arch/--in-place-conversion into an <see cref="IKernel"/>, so every verb
/// selects kernels the same way.
/// </summary>
public static class KernelChoice
{
    public static KernelSelection Create(KernelRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var selection = request.Kind switch
        {
            KernelKind.Linux => Linux(request),
            KernelKind.Emulated => Emulated(request),
            _ => throw new UsageException($"unknown kernel '{request.Kind}'"),
        };
        return selection with { Kernel = Traced(selection.Kernel, request.Trace) };
    }

    /// <summary><paramref name="kernel"/>, or with --trace a kernel that prints each of its calls to <paramref name="trace"/>.</summary>
    internal static IKernel Traced(IKernel kernel, TextWriter? trace)
    {
        if (trace is null) return kernel;
        // vCPU threads and the watchdog may call the kernel concurrently: one line at a time.
        var lines = TextWriter.Synchronized(trace);
        return new TracingKernel(kernel, call => lines.WriteLine(call), ownsInner: true);
    }

    private static KernelSelection Linux(KernelRequest request)
    {
        // The real kernel's architecture and configuration are the machine's: asking for another is a mistake,
        // not something to silently ignore.
        if (request.Arch is not null)
            throw new UsageException("--arch applies only to --kernel emulated");
        if (request.InPlaceConversion)
            throw new UsageException("--in-place-conversion applies only to --kernel emulated");
        if (request.NoDirectMap)
            throw new UsageException("--no-direct-map applies only to --kernel emulated");
        if (request.GmemWrite)
            throw new UsageException("--gmem-write applies only to --kernel emulated");
        if (request.Generation is not null)
            throw new UsageException("--kernel-version applies only to --kernel emulated");
        if (request.Arm64Cpu is not null)
            throw new UsageException("--arm64-cpu applies only to --kernel emulated");
        return new KernelSelection(LinuxKernel.Instance, KvmModule.Detect(), KvmModule.KernelRelease(), UapiProposals.Default);
    }

    private static KernelSelection Emulated(KernelRequest request)
    {
        var (config, description) = EmulatedConfig(request);
        return new KernelSelection(new EmulatedKernel(config), $"emulated ({description})", Release: null, config.Proposals);
    }

    /// <summary>The emulator preset for the request, and a short description of it for humans.</summary>
    internal static (EmulatorConfig Config, string Description) EmulatedConfig(KernelRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Arm64Cpu is { } model && request.Arch != Architecture.Arm64)
            throw new UsageException($"--arm64-cpu {model.Name} needs --kernel emulated --arch arm64");
        if (request.GmemWrite) return WithGmemWrite(request);
        if (!request.NoDirectMap) return BaseConfig(request);
        // "[PATCH v12 00/16] Direct Map Removal Support for guest_memfd" is based on kvm/next (6.18+ guest_memfd).
        if (request.Generation is KernelGeneration g && !g.HasGmemMmap())
            throw new UsageException($"--no-direct-map needs --kernel-version 6.18 or later (the v12 series is based on 6.18+), not {g.Release()}");
        var (config, description) = BaseConfig(request);
        // Like this host: with guest_memfd whatever this machine was built with, as the series needs it.
        if (request.Arch is null && !request.InPlaceConversion)
            (config, description) = (EmulatorConfig.LikeThisHost(), "like this host: x86_64, 6.18");
        return (config with { GuestMemfdNoDirectMap = true }, description + " + direct map removal v12");
    }

    /// <summary>
    /// The request's preset with "[PATCH v7 1/2] KVM: guest_memfd: add generic population via write" applied (based on
    /// kvm/next, 6.18+ guest_memfd), chosen as --no-direct-map chooses: without --arch or --in-place-conversion, this
    /// host with guest_memfd, as the series needs it.
    /// </summary>
    private static (EmulatorConfig Config, string Description) WithGmemWrite(KernelRequest request)
    {
        if (request.Generation is KernelGeneration g && !g.HasGmemMmap())
            throw new UsageException($"--gmem-write needs --kernel-version 6.18 or later (the v7 series is based on 6.18+), not {g.Release()}");
        var (config, description) = EmulatedConfig(request with { GmemWrite = false });
        if (request.Arch is null && !request.InPlaceConversion && !request.NoDirectMap)
            (config, description) = (EmulatorConfig.LikeThisHost(), "like this host: x86_64, 6.18");
        return (config with { GuestMemfdWrite = true }, description + " + guest_memfd write v7");
    }

    private static (EmulatorConfig Config, string Description) BaseConfig(KernelRequest request)
    {
        const string V8 = "in-place conversion v8";
        KernelGeneration? asked = request.Generation;
        // The v8 series is written on top of 6.18+: it has no older flavour.
        if (request.InPlaceConversion && asked is KernelGeneration g && !g.HasGmemMmap())
            throw new UsageException($"--in-place-conversion needs --kernel-version 6.18 or later (the v8 series is based on 6.18+), not {g.Release()}");
        KernelGeneration generation = asked ?? KernelGeneration.Linux618;
        string release = generation.Release();
        return (request.Arch, request.InPlaceConversion) switch
        {
            // No --arch: this machine's kernel, optionally as if the v8 series were applied to it, or at an older
            // release (where it has no guest_memfd: without TDP there is no KVM_X86_SW_PROTECTED_VM to select it).
            (null, false) when generation.HasGmemMmap() => (HostMatching.LikeThisHostAsItIs(),
                HostMatching.HostHasGuestMemfd == false ? "like this host: x86_64, 6.18 without CONFIG_KVM_GUEST_MEMFD" : "like this host: x86_64, 6.18"),
            (null, false) => (EmulatorConfig.LikeThisHost(guestMemfd: false, generation), $"like this host: x86_64, {release}"),
            (null, true) => (EmulatorConfig.LikeThisHost() with
            {
                Generation = KernelGeneration.InPlaceConversionV8,
                GmemInPlaceConversion = true,
            }, $"like this host: x86_64, 6.18 + {V8}"),
            (Architecture.X86_64, true) => (EmulatorConfig.X86_64(inPlaceConversion: true), $"x86_64, all VM types, {V8}"),
            (Architecture.X86_64, false) => (EmulatorConfig.X86_64(generation), $"x86_64, all VM types, {release}"),
            // The v8 series changes x86's private-memory rules; there is no arm64 flavour of it to emulate.
            (Architecture.Arm64, true) => throw new UsageException("--in-place-conversion is emulated for x86_64 only"),
            (Architecture.Arm64, false) when request.Arm64Cpu is { } cpu =>
                (EmulatorConfig.Arm64(generation) with { Arm64Cpu = cpu }, $"arm64, {release}, {cpu.Name}"),
            (Architecture.Arm64, false) => (EmulatorConfig.Arm64(generation), $"arm64, {release}"),
            _ => throw new UsageException($"unknown architecture '{request.Arch}'"),
        };
    }
}
