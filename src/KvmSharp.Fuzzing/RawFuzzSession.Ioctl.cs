// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using KvmSharp.Abi;
using static KvmSharp.Abi.IoctlEncoding;

namespace KvmSharp.Fuzzing;

/// <summary>
/// One ioctl call and what the session learns from it: the target and request are picked
/// (RawFuzzSession.Requests.cs), the argument is an integer or a buffer (RawFuzzSession.Buffers.cs), KVM_RUN is armed
/// with the watchdog, and a success updates the model — the descriptor a creating request installed, the dirty-logging
/// slots — and the outcome keys of the proposals tests look for (userfault slots, HugeTLB guest_memfds).
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>An ioctl on a picked descriptor with a picked request, its argument an integer or a buffer.</summary>
    private string Ioctl()
    {
        var (fd, kind) = PickIoctlTarget();
        uint request = PickRequest(kind);
        // A dirty log exists only on a VM with a logging slot: aim there often enough to get past the slot lookup.
        if ((request == KvmIoctls.KVM_GET_DIRTY_LOG || request == KvmIoctls.KVM_CLEAR_DIRTY_LOG) && _loggingSlots.Count > 0 && _rng.Next(3) != 0)
            (fd, kind) = (_loggingSlots[_rng.Next(_loggingSlots.Count)].Vm, FdKind.Vm);
        bool intForm = _IOC_SIZE(request) == 0 && _IOC_DIR(request) == _IOC_NONE ? _rng.Next(4) != 0 : _rng.Next(6) == 0;
        long rc;
        string what;
        if (intForm)
        {
            ulong value = IntArg(request);
            what = string.Create(CultureInfo.InvariantCulture, $"ioctl({fd} {kind}, {KvmIoctls.NameOf(request)}, 0x{value:X})");
            Begin(what);
            rc = Call(fd, request, value);
        }
        else
        {
            byte[] buffer = Buffer(request, fd);
            what = string.Create(CultureInfo.InvariantCulture, $"ioctl({fd} {kind}, {KvmIoctls.NameOf(request)}, [{buffer.Length}] {Convert.ToHexString(buffer.AsSpan(0, Math.Min(buffer.Length, 48)))})");
            Begin(what);
            rc = Call(fd, request, buffer);
            if (rc == 0) RememberLoggingSlot(fd, request, buffer);
            CountUserfaultSlot(request, buffer, rc);
            CountHugetlbGmem(request, buffer, rc);
            AfterCreateDevice(kind, request, rc, buffer);
        }
        AfterIoctl(fd, kind, request, rc);
        return Record(what, rc);
    }

    /// <summary>The ioctl with an integer argument; a KVM_RUN is kicked by the watchdog after its budget.</summary>
    private long Call(int fd, uint request, ulong value)
    {
        bool run = request == KvmIoctls.KVM_RUN;
        if (run) _watchdog.Arm(_kernel);
        try
        {
            return _kernel.Ioctl(Handle(fd), request, value);
        }
        finally
        {
            if (run) _watchdog.Disarm();
        }
    }

    /// <summary>The ioctl with a buffer argument; a KVM_RUN is kicked by the watchdog after its budget.</summary>
    private long Call(int fd, uint request, byte[] buffer)
    {
        bool run = request == KvmIoctls.KVM_RUN;
        if (run) _watchdog.Arm(_kernel);
        try
        {
            return _kernel.Ioctl(Handle(fd), request, buffer);
        }
        finally
        {
            if (run) _watchdog.Disarm();
        }
    }

    /// <summary>The descriptor-creating requests: a success installs exactly one new fd of a known kind.</summary>
    private void AfterIoctl(int fd, FdKind kind, uint request, long rc)
    {
        if (rc < 0) return;
        FdKind? created = kind switch
        {
            FdKind.System when request == KvmIoctls.KVM_CREATE_VM => FdKind.Vm,
            FdKind.Vm when request == KvmIoctls.KVM_CREATE_GUEST_MEMFD => FdKind.Gmem,
            FdKind.Vm when request == KvmIoctls.KVM_CREATE_VCPU => FdKind.Vcpu,
            // A binary stats fd: read, pread, lseek … reach it as any other descriptor.
            FdKind.Vm or FdKind.Vcpu when request == KvmIoctls.KVM_GET_STATS_FD => FdKind.Other,
            _ => null,
        };
        if (created is FdKind c) Opened((int)rc, c);
    }

    /// <summary>KVM_CREATE_DEVICE answers 0 and writes the new descriptor into kvm_create_device.fd (none with TEST).</summary>
    private void AfterCreateDevice(FdKind kind, uint request, long rc, byte[] buffer)
    {
        if (kind != FdKind.Vm || request != KvmIoctls.KVM_CREATE_DEVICE || rc != 0 || buffer.Length < 12) return;
        if ((BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(8)) & KvmDeviceConstants.KVM_CREATE_DEVICE_TEST) != 0) return;
        Opened(BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(4)), FdKind.Device);
    }

    /// <summary>
    /// Counts KVM_SET_USER_MEMORY_REGION2 calls that carry KVM_MEM_USERFAULT ([PATCH v3 04/15]) under their own outcome key,
    /// so a test can see the fuzzer gets such slots accepted (and refused) at all.
    /// </summary>
    private void CountUserfaultSlot(uint request, byte[] buffer, long rc)
    {
        if (Outcomes is null || request != KvmIoctls.KVM_SET_USER_MEMORY_REGION2 || buffer.Length < 8) return;
        if ((BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)) & KvmConstants.KVM_MEM_USERFAULT) == 0) return;
        Tally(Outcomes, UserfaultSlotOutcome, rc);
    }

    /// <summary>
    /// Counts KVM_CREATE_GUEST_MEMFD calls with GUEST_MEMFD_FLAG_HUGETLB on a kernel with a HugeTLB proposal under their
    /// own outcome key, so a test can see the fuzzer gets such files created (and refused) at all.
    /// </summary>
    private void CountHugetlbGmem(uint request, byte[] buffer, long rc)
    {
        if (Outcomes is null || request != KvmIoctls.KVM_CREATE_GUEST_MEMFD || buffer.Length < 16) return;
        if (_kernel.Config.GuestMemfdHugetlb == GuestMemfdHugetlbEncoding.None) return;
        if ((BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(8)) & GuestMemfdHugetlbAbi.GUEST_MEMFD_FLAG_HUGETLB) == 0) return;
        Tally(Outcomes, HugetlbGmemOutcome, rc);
    }

    /// <summary>Notes a memory slot that now logs dirty pages (or forgets one deleted or no longer logging).</summary>
    private void RememberLoggingSlot(int fd, uint request, byte[] buffer)
    {
        if ((request != KvmIoctls.KVM_SET_USER_MEMORY_REGION && request != KvmIoctls.KVM_SET_USER_MEMORY_REGION2) || buffer.Length < 32) return;
        uint slot = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        bool logs = (BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)) & KvmConstants.KVM_MEM_LOG_DIRTY_PAGES) != 0 && GetU64(buffer, 16) != 0;
        _loggingSlots.Remove((fd, slot));
        if (logs) _loggingSlots.Add((fd, slot));
    }
}
