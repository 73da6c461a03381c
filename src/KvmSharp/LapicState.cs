// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// A local APIC's register page (struct kvm_lapic_state, 1 KiB) from <see cref="Vcpu.GetLapic"/>, with typed views of
/// the registers at their xAPIC offsets (Intel SDM vol. 3 table 11-1). Change it and pass it to
/// <see cref="Vcpu.SetLapic"/>; the kernel recomputes the version, PPR and the timer's current count.
/// </summary>
public sealed class LapicState
{
    /// <summary>Register offsets in the page.</summary>
    public const int IdOffset = 0x20, VersionOffset = 0x30, TprOffset = 0x80, PprOffset = 0xa0, LdrOffset = 0xd0,
        DfrOffset = 0xe0, SvrOffset = 0xf0, IsrOffset = 0x100, TmrOffset = 0x180, IrrOffset = 0x200, EsrOffset = 0x280,
        IcrLowOffset = 0x300, IcrHighOffset = 0x310, LvtTimerOffset = 0x320, LvtThermalOffset = 0x330,
        LvtPerfOffset = 0x340, LvtLint0Offset = 0x350, LvtLint1Offset = 0x360, LvtErrorOffset = 0x370,
        TimerInitialCountOffset = 0x380, TimerCurrentCountOffset = 0x390, TimerDivideOffset = 0x3e0;

    /// <summary>SVR bit 8: the APIC is software-enabled.</summary>
    public const uint SvrApicEnabled = 1u << 8;

    private readonly byte[] _regs;

    /// <summary>A page from raw bytes (exactly 1024).</summary>
    public LapicState(ReadOnlySpan<byte> regs)
    {
        if (regs.Length != KvmConstants.KVM_APIC_REG_SIZE)
            throw new ArgumentException($"a local APIC page is {KvmConstants.KVM_APIC_REG_SIZE} bytes, {regs.Length} given", nameof(regs));
        _regs = regs.ToArray();
    }

    /// <summary>The raw page.</summary>
    public ReadOnlySpan<byte> Registers => _regs;

    /// <summary>The 32-bit register at <paramref name="offset"/> (16-byte aligned, below 0x400).</summary>
    public uint this[int offset]
    {
        get => BinaryPrimitives.ReadUInt32LittleEndian(_regs.AsSpan(CheckOffset(offset)));
        set => BinaryPrimitives.WriteUInt32LittleEndian(_regs.AsSpan(CheckOffset(offset)), value);
    }

    /// <summary>The xAPIC ID (register bits 31:24; the vCPU id at creation).</summary>
    public byte Id => (byte)(this[IdOffset] >> 24);

    /// <summary>The version register (KVM: 0x14, max LVT entry in bits 23:16).</summary>
    public uint Version => this[VersionOffset];

    /// <summary>Task priority.</summary>
    public uint Tpr { get => this[TprOffset]; set => this[TprOffset] = value; }

    /// <summary>Processor priority (recomputed by the kernel).</summary>
    public uint Ppr => this[PprOffset];

    /// <summary>Spurious-interrupt vector register (0xFF after reset: software-disabled).</summary>
    public uint Svr { get => this[SvrOffset]; set => this[SvrOffset] = value; }

    /// <summary>SVR bit 8.</summary>
    public bool SoftwareEnabled
    {
        get => (Svr & SvrApicEnabled) != 0;
        set => Svr = value ? Svr | SvrApicEnabled : Svr & ~SvrApicEnabled;
    }

    /// <summary>LVT timer, thermal, performance, LINT0, LINT1, error (index 0–5).</summary>
    public uint Lvt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 5);
        return this[LvtTimerOffset + 0x10 * index];
    }

    /// <summary>The timer's initial count.</summary>
    public uint TimerInitialCount => this[TimerInitialCountOffset];

    /// <summary>The timer's current count (0 with no timer running).</summary>
    public uint TimerCurrentCount => this[TimerCurrentCountOffset];

    /// <summary>Whether <paramref name="vector"/> is requested (IRR).</summary>
    public bool IsRequested(byte vector) => TestVector(IrrOffset, vector);

    /// <summary>Whether <paramref name="vector"/> is in service (ISR).</summary>
    public bool IsInService(byte vector) => TestVector(IsrOffset, vector);

    /// <summary>Whether <paramref name="vector"/> was accepted level-triggered (TMR).</summary>
    public bool IsLevelTriggered(byte vector) => TestVector(TmrOffset, vector);

    private bool TestVector(int reg, byte vector) => (this[reg + 0x10 * (vector >> 5)] & (1u << (vector & 31))) != 0;

    internal kvm_lapic_state ToAbi()
    {
        var s = default(kvm_lapic_state);
        _regs.CopyTo(s.regs);
        return s;
    }

    private static int CheckOffset(int offset)
    {
        if (offset < 0 || offset > KvmConstants.KVM_APIC_REG_SIZE - 4 || (offset & 0xf) != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "APIC registers are 16-byte aligned below 0x400");
        return offset;
    }
}
