// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The interpreter's side of the host's debug exceptions (<see cref="Arm64HostDebug"/>): BRK routed to EL2, and the
/// watchpoint check on each data access, over all of its bytes, before its stage-1 translation.
/// </summary>
internal sealed partial class A64Interpreter
{
    private Arm64HostDebug? _hostDebug;

    /// <summary>Armed watchpoints (null when none): the only cost a data access pays while the VMM does not watch.</summary>
    private Arm64HostDebug? _hostWatch;

    /// <summary>
    /// The host's debugging (vcpu->guest_debug != 0, so MDCR_EL2.TDE routes debug exceptions to EL2), or null when
    /// KVM_SET_GUEST_DEBUG left it off.
    /// </summary>
    public Arm64HostDebug? HostDebug
    {
        get => _hostDebug;
        set
        {
            _hostDebug = value;
            _hostWatch = value is { HasWatchpoints: true } ? value : null;
        }
    }

    /// <summary>
    /// BRK with the host debugging: MDCR_EL2.TDE routes the Breakpoint Instruction exception to EL2 (debug.c
    /// kvm_arm_setup_mdcr_el2), handle_exit.c kvm_handle_guest_debug exits with EC 0x3C, ISS = imm16; PC stays at
    /// the BRK. False when the guest takes it itself.
    /// </summary>
    private bool BrkToHost(uint imm16) =>
        _hostDebug is not null ? throw new HostDebugStop(Arm64HostDebug.BrkEsr(imm16), far: null) : false;

    /// <summary>
    /// A data access of <paramref name="length"/> bytes at <paramref name="va"/> about to be translated (every data
    /// access goes through MemoryAccess, A64Interpreter.LoadStore.cs, which knows its size: an SVE element, a DC ZVA
    /// block, a whole pair or structure): a watched byte in it is a watchpoint exception to EL2 (EC 0x34, FAR the
    /// lowest watched byte), before the access or any register write (Arm ARM D2.10: the instruction is not
    /// executed; an SVE access is checked element by element, as it is translated).
    /// </summary>
    private void CheckHostWatchpoints(ulong va, int length, bool write)
    {
        if (_hostWatch is not { } d) return;
        if (d.WatchpointHit(va, length, write, cpu.AtEl0) is ulong far)
            throw new HostDebugStop(Arm64HostDebug.WatchpointEsr(write), far);
    }
}
