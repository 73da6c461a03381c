// SPDX-License-Identifier: MIT
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// INVD, WBINVD and WBNOINVD at CPL 0 (CPL &gt; 0 is #GP(0) in <see cref="TryPrivilegedOutsideSubset"/>). Each is
/// intercepted (vmx.c kvm_vmx_exit_handlers EXIT_REASON_INVD/WBINVD, svm.c INVD/WBINVD interceptions; WBNOINVD takes
/// the WBINVD exit, Intel SDM Vol. 3C 26.1.3, AMD APM Vol. 2 15.9) and nothing of it reaches the guest: x86.c
/// kvm_emulate_invd "Treat an INVD instruction as a NOP and just skip it"; kvm_emulate_wbinvd flushes the host's
/// caches only for non-coherent DMA (kvm_emulate_wbinvd_noskip) and skips. There are no caches to flush here.
/// SeaBIOS flushes with WBINVD before it locks its shadow RAM read-only (fw/shadow.c make_bios_readonly_intel).
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>INVD, WBINVD, WBNOINVD (already past the CPL check): nothing but the next instruction.</summary>
    private static bool TryCacheControl(in Instruction i) =>
        i.Mnemonic is Mnemonic.Invd or Mnemonic.Wbinvd or Mnemonic.Wbnoinvd;
}
