// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// The kernel a run uses and what the run says about it: the selection (the request's kernel, the X86Userfault profile
/// --lazy-restore needs, an SVE host for --sve), the check of --lazy-restore's conditions, and the alternatives named
/// when the kernel has no guest_memfd for the VM.
/// </summary>
public static partial class RunCommand
{
    /// <summary>The kernel of the run: the X86Userfault profile for --lazy-restore, an SVE host for --sve on emulated arm64, else the request's.</summary>
    private static KernelSelection SelectKernel(KernelRequest kernel, bool lazyRestore, int? sveBits) =>
        lazyRestore ? UserfaultKernel(kernel)
        : sveBits is not null && kernel is { Kind: KernelKind.Emulated, Arch: Emulation.Architecture.Arm64 } ? SveKernel(kernel, sveBits.Value)
        : KernelChoice.Create(kernel);

    /// <summary>--lazy-restore needs a snapshot file and the emulated kernel, whose X86Userfault profile it uses whole.</summary>
    private static void CheckLazyRestore(KernelRequest kernel, bool fromSnapshot)
    {
        if (!fromSnapshot) throw new UsageException("--lazy-restore restores a snapshot: give a snapshot file (--save-snapshot writes one)");
        if (kernel.Kind != KernelKind.Emulated)
        {
            throw new UsageException("--lazy-restore needs KVM userfault and guest_memfd write(2), unmerged proposals no Linux kernel offers: " +
                                     "use --kernel emulated");
        }
        if (kernel.InPlaceConversion || kernel.Generation is not null)
            throw new UsageException("--lazy-restore runs on the emulator's X86Userfault profile (6.18, x86_64): it does not combine with --in-place-conversion or --kernel-version");
    }

    /// <summary>
    /// The emulated kernel of the conformance profile X86Userfault: x86_64 6.18 with guest_memfd write v7, direct map
    /// removal v12 and KVM userfault v3 — what Firecracker's lazy guest_memfd snapshot restore needs.
    /// </summary>
    private static KernelSelection UserfaultKernel(KernelRequest kernel)
    {
        EmulatorConfig config = Conformance.EmulatedKernels.X86Userfault();
        var selection = new KernelSelection(new EmulatedKernel(config),
            "emulated (x86_64, 6.18 + guest_memfd write v7 + direct map removal v12 + KVM userfault v3)", Release: null, config.Proposals);
        if (kernel.Trace is not TextWriter trace) return selection;
        var lines = TextWriter.Synchronized(trace);
        return selection with { Kernel = new Kernel.Tracing.TracingKernel(selection.Kernel, call => lines.WriteLine(call), ownsInner: true) };
    }

    /// <summary>
    /// --sve on --kernel emulated --arch arm64: the request's arm64 preset with a host CPU that has SVE
    /// (Emulation/Arm64/Arm64CpuModel.cs): the one --arm64-cpu names, which must have SVE; else for 128 bits the Neoverse
    /// V2-like one, whose SVE2 runs code built for Armv9, and otherwise the Neoverse V1-like one (vector lengths of 128
    /// and 256 bits, no SVE2). Traced like KernelChoice's kernels.
    /// </summary>
    private static KernelSelection SveKernel(KernelRequest kernel, int sveBits)
    {
        if (kernel.Arm64Cpu is { HasSve: false } plain)
            throw new UsageException($"run: --sve {sveBits} needs an arm64 CPU with SVE; --arm64-cpu {plain.Name} has none (neoverse-v1 and neoverse-v2 have it)");
        var (config, description) = KernelChoice.EmulatedConfig(kernel with { Arm64Cpu = null });
        var cpu = kernel.Arm64Cpu ?? (sveBits == 128 ? Emulation.Arm64.Arm64CpuModel.NeoverseV2 : Emulation.Arm64.Arm64CpuModel.NeoverseV1);
        config = config with { Arm64Cpu = cpu };
        string host = cpu.HasSve2 ? $"{cpu.Name} host with SVE2" : $"{cpu.Name} host with SVE";
        var selection = new KernelSelection(new EmulatedKernel(config), $"emulated ({description}, {host})", Release: null, config.Proposals);
        if (kernel.Trace is not TextWriter trace) return selection;
        var lines = TextWriter.Synchronized(trace);
        return selection with { Kernel = new Kernel.Tracing.TracingKernel(selection.Kernel, call => lines.WriteLine(call), ownsInner: true) };
    }

    /// <summary>What else the user can ask for when the kernel has no guest_memfd for the VM.</summary>
    private static string Alternatives(KernelRequest kernel, bool refusing)
    {
        string other = refusing
            ? $"--memory {MemoryAuto} or --memory {MemoryHost} runs the guest in ordinary host memory"
            : $"--memory {MemoryGuestMemfd} refuses";
        // The emulated kernel like this host is built like it (without guest_memfd here); the full x86_64 preset has it.
        string? elsewhere = kernel switch
        {
            { Kind: KernelKind.Linux } => "--kernel emulated --arch x86_64 gives guest_memfd",
            // Before 6.18 guest_memfd cannot be mapped: no kernel of that release backs a micro-VM with it alone.
            { Kind: KernelKind.Emulated, Generation: KernelGeneration g } when !g.HasGmemMmap() =>
                "a guest_memfd-only micro-VM needs Linux 6.18 or later (GUEST_MEMFD_FLAG_MMAP)",
            { Kind: KernelKind.Emulated, Arch: null, InPlaceConversion: false } => "--arch x86_64 gives guest_memfd",
            _ => null,
        };
        return elsewhere is null ? other : $"{other}; {elsewhere}";
    }
}
