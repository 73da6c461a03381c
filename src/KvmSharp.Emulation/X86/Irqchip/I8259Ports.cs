// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>
/// i8259.c picdev_master/slave/elcr ops (picdev_write, picdev_read): the PIC's ports as an in-kernel device on the PIO
/// bus, so a guest's IN/OUT there completes in the kernel. kvm_pic_init registers three devices — master 0x20 len 2,
/// slave 0xa0 len 2, ELCR 0x4d0 len 2 — that all end in the same picdev_write/picdev_read; kvm_pic_destroy (VM
/// destruction) unregisters them. An access of another width inside a range is taken and ignored ("non byte write",
/// a read fills zeros: memset(val, 0, len)); one that crosses a range's end is no device's (userspace).
/// </summary>
internal sealed class I8259Ports(Kvm kvm, I8259 pic) : IKvmIoDevice
{
    /// <summary>
    /// kvm_pic_init's three kvm_io_bus_register_dev calls; a full bus (ENOSPC, NR_IOBUS_DEVS) unregisters what was
    /// registered ("fail_unreg_2" / "fail_unreg_1") and fails the call.
    /// </summary>
    public static long Register(Kvm kvm, I8259 pic)
    {
        var dev = new I8259Ports(kvm, pic);
        foreach (ulong port in (ulong[])[0x20, 0xa0, 0x4d0])
        {
            long r = kvm.IoBus.TryRegister(KvmBus.Pio, port, 2, dev);
            if (r == 0) continue;
            kvm.IoBus.UnregisterAll(KvmBus.Pio, d => ReferenceEquals(d, dev));
            return r;
        }
        return 0;
    }

    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        if (addr is not (0x20 or 0x21 or 0xa0 or 0xa1 or 0x4d0 or 0x4d1)) return false;
        if (data.Length != 1) return true;
        lock (kvm.Kernel.SyncRoot)
        {
            if (addr >= 0x4d0) pic.ElcrWrite((int)(addr & 1), data[0]);
            else pic.IoportWrite((int)(addr >> 7), (int)(addr & 1), data[0]);
        }
        return true;
    }

    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        if (addr is not (0x20 or 0x21 or 0xa0 or 0xa1 or 0x4d0 or 0x4d1)) return false;
        data.Clear();
        if (data.Length != 1) return true;
        lock (kvm.Kernel.SyncRoot)
            data[0] = addr >= 0x4d0 ? pic.ElcrRead((int)(addr & 1)) : pic.IoportRead((int)(addr >> 7), (int)addr);
        return true;
    }
}
