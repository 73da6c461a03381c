// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Emulation.Mmu;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// INVD, WBINVD and WBNOINVD at CPL 0 (CPL &gt; 0 is #GP(0) in <see cref="TryPrivilegedOutsideSubset"/>). Each is
/// intercepted (vmx.c kvm_vmx_exit_handlers EXIT_REASON_INVD/WBINVD, svm.c INVD/WBINVD interceptions; WBNOINVD takes
/// the WBINVD exit, Intel SDM Vol. 3C 26.1.3, AMD APM Vol. 2 15.9) and nothing of it reaches the guest: x86.c
/// kvm_emulate_invd "Treat an INVD instruction as a NOP and just skip it"; kvm_emulate_wbinvd flushes the host's
/// caches only for non-coherent DMA (kvm_emulate_wbinvd_noskip) and skips. There are no caches to flush here.
/// SeaBIOS flushes with WBINVD before it locks its shadow RAM read-only (fw/shadow.c make_bios_readonly_intel).
/// <para>
/// CLFLUSH, CLFLUSHOPT and CLWB (0F AE /7, 66 0F AE /7, 66 0F AE /6): no intercept exists on SVM, so the CPU runs
/// them at any CPL whatever the guest's CPUID says; their only visible effect is a byte load's faults (Intel SDM
/// Vol. 2A CLFLUSH: "subject to all permission checking and faults associated with a byte load") — the segment and
/// canonical checks and the page walk's #PF with a read error code — without touching memory, so an MMIO line is
/// not read (emulate.c em_clflush/em_clflushopt are NoAccess, "emulating clflush regardless of cpuid"). kvm_pvm
/// differs on CLWB (HostDeviations.KvmPvmClwbFails). OVMF's PEI flushes with CLFLUSH under SEV-SNP.
/// </para>
/// <para>
/// PREFETCHT0/T1/T2/NTA (0F 18 /1../3, /0), PREFETCHW (0F 0D /1) and AMD's PREFETCH (0F 0D /0): hints that never
/// fault and change nothing a guest can see (SDM Vol. 2B PREFETCHh: "does not affect program behavior"; "If the line
/// selected is already present in the cache hierarchy ... no data movement occurs. Prefetches from uncacheable or WC
/// memory are ignored"; APM Vol. 3 PREFETCH: no exceptions for the address). OVMF's DXE core prefetches.
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>INVD, WBINVD, WBNOINVD (already past the CPL check): nothing but the next instruction.</summary>
    private static bool TryCacheControl(in Instruction i) =>
        i.Mnemonic is Mnemonic.Invd or Mnemonic.Wbinvd or Mnemonic.Wbnoinvd;

    /// <summary>
    /// CLFLUSH, CLFLUSHOPT, CLWB: a byte load's checks and nothing else; the prefetch hints: nothing at all; false for
    /// any other instruction.
    /// </summary>
    private bool TryCacheLineFlush(in Instruction i)
    {
        if (i.Mnemonic is Mnemonic.Prefetcht0 or Mnemonic.Prefetcht1 or Mnemonic.Prefetcht2 or Mnemonic.Prefetchnta
            or Mnemonic.Prefetchw or Mnemonic.Prefetch) return true;
        if (i.Mnemonic is not (Mnemonic.Clflush or Mnemonic.Clflushopt or Mnemonic.Clwb)) return false;
        ulong offset = EffectiveAddress(i);
        CheckRealModeLimit(i.MemorySegment, offset, 1); // X86Emulator.RealModeEvents.cs
        Translate(Linear(i.MemorySegment, offset), PageAccess.Read);
        return true;
    }
}
