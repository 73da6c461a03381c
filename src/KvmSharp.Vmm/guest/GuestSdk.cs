// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// The C guest SDK: <c>kvmsharp_guest.h</c>, one freestanding header with every number of the guest ABI
/// (GUEST-ABI.md) and inline functions for the console, exit, the call region, host calls, the TSC and private
/// memory. The package ships it beside GUEST-ABI.md; this class hands out the same bytes (embedded in the assembly)
/// so a host program or a tool can write it next to a guest's sources (<c>kvmsharp new-guest</c> does).
/// </summary>
public static class GuestSdk
{
    /// <summary>The header's file name, as guests include it: <c>#include "kvmsharp_guest.h"</c>.</summary>
    public const string HeaderFileName = "kvmsharp_guest.h";

    private const string HeaderResource = "KvmSharp.Vmm.guest." + HeaderFileName;

    private static readonly Lazy<string> HeaderText = new(ReadHeader);

    /// <summary>The text of <c>kvmsharp_guest.h</c> for this assembly's ABI version.</summary>
    public static string Header => HeaderText.Value;

    /// <summary>
    /// The gcc (or clang) arguments that build a guest as this ABI's loader takes it, before the output and source
    /// arguments: a static non-PIE ELF64 at 0x100000 with 4 KiB segment alignment, no libc, no stack protector, no
    /// SSE in generated code (the emulated kernel and kvm_pvm hosts emulate SSE only in part), no red zone. (No
    /// -no-pie: -static with -fno-pie already links ET_EXEC, and clang rejects -no-pie beside -static under -Werror.)
    /// </summary>
    public static IReadOnlyList<string> CompilerArguments { get; } =
    [
        "-std=gnu11", "-O2", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-fno-stack-protector",
        "-mno-red-zone", "-mgeneral-regs-only", "-fcf-protection=none", "-fno-asynchronous-unwind-tables",
        "-Wl,-Ttext-segment=0x100000", "-Wl,-z,max-page-size=0x1000", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
    ];

    /// <summary>
    /// The aarch64 gcc (<c>aarch64-linux-gnu-gcc</c>) arguments that build a guest for an arm64 micro-VM (GUEST-ABI.md,
    /// "arm64 C guests"), before the output and source arguments: a static non-PIE ELF64 EM_AARCH64 at 0x100000 with
    /// 4 KiB segment alignment (the aarch64 linker's default is 64 KiB), no libc, no stack protector, no
    /// branch-protection instructions, and -mgeneral-regs-only as on x86-64 (optional here: the VMM enables FP/SIMD).
    /// No -mstrict-align: the guest runs with the MMU on and RAM is Normal memory, where unaligned accesses work (the
    /// port window is Device memory, but the SDK's port accesses are naturally aligned inline assembly).
    /// </summary>
    public static IReadOnlyList<string> Arm64CompilerArguments { get; } =
    [
        "-std=gnu11", "-O2", "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-fno-stack-protector",
        "-mgeneral-regs-only", "-mbranch-protection=none", "-fno-asynchronous-unwind-tables",
        "-Wl,-Ttext-segment=0x100000", "-Wl,-z,max-page-size=0x1000", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
    ];

    /// <summary>The cross compiler <see cref="Arm64CompilerArguments"/> are for (Debian/Ubuntu package gcc-aarch64-linux-gnu).</summary>
    public const string Arm64Compiler = "aarch64-linux-gnu-gcc";

    private static string ReadHeader()
    {
        using Stream? stream = typeof(GuestSdk).Assembly.GetManifestResourceStream(HeaderResource)
            ?? throw new InvalidOperationException($"{typeof(GuestSdk).Assembly.GetName().Name} lacks its embedded {HeaderFileName}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
