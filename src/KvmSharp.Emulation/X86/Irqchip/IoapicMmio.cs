// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// ioapic.c ioapic_mmio_ops (ioapic_mmio_read / ioapic_mmio_write): the IOAPIC's register window as an in-kernel device
/// on the MMIO bus. kvm_ioapic_init registers it once at the reset base (IOAPIC_DEFAULT_BASE_ADDRESS, len
/// IOAPIC_MEM_LENGTH 0x100) and kvm_ioapic_destroy (VM destruction) unregisters it; KVM_SET_IRQCHIP's base_address
/// moves neither the registration nor the window: ioapic_in_range checks the access against the new base, so an
/// access at the old window then goes to userspace (-EOPNOTSUPP) and one at the new base never reaches the device.
/// Inside the window only "addr &amp; 0xff" 0x00 (IOREGSEL) and 0x10 (IOWIN) are registers: the 82093AA has no EOI
/// register at 0x40 (IOAPIC_VERSION_ID 0x11), so that and every other offset reads 0 and ignores writes.
/// </summary>
internal sealed class IoapicMmio(Kvm kvm, Ioapic ioapic) : IKvmIoDevice
{
    /// <summary>IOAPIC_REG_SELECT and IOAPIC_REG_WINDOW (ioapic.h).</summary>
    private const ulong RegSelect = 0x00, RegWindow = 0x10;

    /// <summary>kvm_ioapic_init: "kvm_io_bus_register_dev(kvm, KVM_MMIO_BUS, ioapic-&gt;base_address, IOAPIC_MEM_LENGTH, &amp;ioapic-&gt;dev)".</summary>
    public static long Register(Kvm kvm, Ioapic ioapic) =>
        kvm.IoBus.TryRegister(KvmBus.Mmio, ioapic.BaseAddress, Ioapic.MemLength, new IoapicMmio(kvm, ioapic));

    /// <summary>ioapic_in_range: base_address &lt;= addr &lt; base_address + IOAPIC_MEM_LENGTH (the access's start only).</summary>
    private bool InRange(ulong addr) => addr >= ioapic.BaseAddress && addr < ioapic.BaseAddress + Ioapic.MemLength;

    /// <summary>
    /// ioapic_mmio_read: IOREGSEL or ioapic_read_indirect, 0 elsewhere; the 32-bit result is stored for 1, 2 and 4
    /// bytes ("memcpy(val, (char *)&amp;result, len)"), zero-extended for 8; another width is only logged ("wrong length"),
    /// leaving the data as it was — zeros here.
    /// </summary>
    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        if (!InRange(addr)) return false;
        uint result;
        lock (kvm.Kernel.SyncRoot)
        {
            result = (addr & 0xff) switch
            {
                RegSelect => ioapic.IoRegSel,
                RegWindow => ioapic.ReadIndirect(),
                _ => 0,
            };
        }
        data.Clear();
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, result);
        if (data.Length is 1 or 2 or 4 or 8) bytes[..data.Length].CopyTo(data);
        return true;
    }

    /// <summary>
    /// ioapic_mmio_write: the data is the low 32 bits of an 8-byte access, else the 1, 2 or 4 bytes zero-extended
    /// (another width: "Unsupported size", nothing); IOREGSEL keeps "data &amp; 0xFF" (an 8-bit register), IOWIN is
    /// ioapic_write_indirect, other offsets ignore the write.
    /// </summary>
    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        if (!InRange(addr)) return false;
        if (data.Length is not (1 or 2 or 4 or 8)) return true;
        uint value = 0;
        for (int b = 0; b < Math.Min(4, data.Length); b++) value |= (uint)data[b] << (8 * b);
        lock (kvm.Kernel.SyncRoot)
        {
            switch (addr & 0xff)
            {
                case RegSelect:
                    ioapic.IoRegSel = value & 0xff;
                    break;
                case RegWindow:
                    ioapic.WriteIndirect(value);
                    break;
            }
        }
        return true;
    }
}
