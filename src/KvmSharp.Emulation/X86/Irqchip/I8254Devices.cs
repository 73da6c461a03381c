// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.X86.Irqchip;

/// <summary>i8254.c pit_dev_ops: ports 0x40–0x43 on KVM_PIO_BUS.</summary>
internal sealed class I8254PortDevice(I8254 pit) : IKvmIoDevice
{
    /// <summary>pit_in_range: 0x40 ≤ addr &lt; 0x44, else -EOPNOTSUPP.</summary>
    private static bool InRange(ulong addr) => addr >= I8254.BaseAddress && addr < I8254.BaseAddress + I8254.MemLength;

    /// <summary>
    /// pit_ioport_read: port 0x43 returns 0 without writing the data (the access completes with the buffer as it
    /// was); others copy min(len, 4) bytes of the int result.
    /// </summary>
    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        if (!InRange(addr)) return false;
        int port = (int)(addr & 3);
        if (port == 3) return true;
        int ret = pit.PortRead(port);
        for (int i = 0; i < Math.Min(data.Length, 4); i++) data[i] = (byte)(ret >> (8 * i));
        return true;
    }

    /// <summary>pit_ioport_write: only the low byte of the data is used.</summary>
    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        if (!InRange(addr)) return false;
        pit.PortWrite((int)(addr & 3), data.IsEmpty ? (byte)0 : data[0]);
        return true;
    }
}

/// <summary>
/// i8254.c speaker_dev_ops: registered at 0x61 with length 4 only with KVM_PIT_SPEAKER_DUMMY; an access not at 0x61
/// exactly is -EOPNOTSUPP (it goes to userspace).
/// </summary>
internal sealed class I8254SpeakerDevice(I8254 pit) : IKvmIoDevice
{
    public bool Read(KvmVcpu vcpu, ulong addr, Span<byte> data)
    {
        if (addr != I8254.SpeakerAddress) return false;
        int ret = pit.SpeakerRead();
        for (int i = 0; i < Math.Min(data.Length, 4); i++) data[i] = (byte)(ret >> (8 * i));
        return true;
    }

    public bool Write(KvmVcpu vcpu, ulong addr, ReadOnlySpan<byte> data)
    {
        if (addr != I8254.SpeakerAddress) return false;
        uint val = 0;
        for (int i = 0; i < Math.Min(data.Length, 4); i++) val |= (uint)data[i] << (8 * i);
        pit.SpeakerWrite(val);
        return true;
    }
}
