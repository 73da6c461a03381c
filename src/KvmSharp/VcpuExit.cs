// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp;

/// <summary>
/// One KVM_RUN exit, read in place from the vCPU's kvm_run page (no copy). Valid until the next Run. Data spans
/// (port I/O, MMIO) point into that page, so an IN or MMIO read is answered by writing into them.
/// </summary>
public readonly ref struct VcpuExit
{
    private readonly Span<byte> _run;

    internal VcpuExit(Span<byte> run, bool interrupted)
    {
        _run = run;
        Interrupted = interrupted;
    }

    /// <summary>KVM_RUN returned EINTR (a signal or immediate_exit); <see cref="Reason"/> is stale.</summary>
    public bool Interrupted { get; }

    public KvmExitReason Reason => (KvmExitReason)U32(KvmRunLayout.exit_reason);

    // ---- KVM_EXIT_IO ----
    public bool IoIsOut => _run[KvmRunLayout.io_direction] == KvmConstants.KVM_EXIT_IO_OUT;
    public int IoSize => _run[KvmRunLayout.io_size];
    public ushort IoPort => BinaryPrimitives.ReadUInt16LittleEndian(_run[KvmRunLayout.io_port..]);
    public uint IoCount => U32(KvmRunLayout.io_count);

    /// <summary>The bytes of a port I/O exit (size × count), inside the kvm_run mapping.</summary>
    public Span<byte> IoData
    {
        get
        {
            ulong offset = U64(KvmRunLayout.io_data_offset);
            int length = IoSize * (int)IoCount;
            if (offset > (ulong)_run.Length || (ulong)length > (ulong)_run.Length - offset)
                throw new InvalidOperationException($"KVM_EXIT_IO data_offset 0x{offset:X} (+{length}) lies outside the kvm_run page");
            return _run.Slice((int)offset, length);
        }
    }

    // ---- KVM_EXIT_MMIO ----
    public ulong MmioAddress => U64(KvmRunLayout.mmio_phys_addr);
    public bool MmioIsWrite => _run[KvmRunLayout.mmio_is_write] != 0;
    public Span<byte> MmioData => _run.Slice(KvmRunLayout.mmio_data, (int)Math.Min(8u, U32(KvmRunLayout.mmio_len)));

    // ---- KVM_EXIT_MEMORY_FAULT ----
    public ulong MemoryFaultFlags => U64(KvmRunLayout.memory_fault_flags);
    public ulong MemoryFaultGpa => U64(KvmRunLayout.memory_fault_gpa);
    public ulong MemoryFaultSize => U64(KvmRunLayout.memory_fault_size);

    // ---- KVM_EXIT_INTERNAL_ERROR ----
    public uint InternalSuberror => U32(KvmRunLayout.internal_suberror);

    // ---- KVM_EXIT_FAIL_ENTRY ----
    public ulong FailEntryReason => U64(KvmRunLayout.fail_entry_hardware_entry_failure_reason);

    // ---- KVM_EXIT_UNKNOWN ----
    public ulong HardwareExitReason => U64(KvmRunLayout.hw_hardware_exit_reason);

    public override string ToString() => Interrupted ? "interrupted" : Reason switch
    {
        KvmExitReason.KVM_EXIT_IO => $"KVM_EXIT_IO {(IoIsOut ? "out" : "in")} port=0x{IoPort:X} size={IoSize} count={IoCount}",
        KvmExitReason.KVM_EXIT_MMIO => $"KVM_EXIT_MMIO {(MmioIsWrite ? "write" : "read")} addr=0x{MmioAddress:X}",
        KvmExitReason.KVM_EXIT_MEMORY_FAULT => $"KVM_EXIT_MEMORY_FAULT flags=0x{MemoryFaultFlags:X} gpa=0x{MemoryFaultGpa:X} size=0x{MemoryFaultSize:X}",
        KvmExitReason.KVM_EXIT_INTERNAL_ERROR => $"KVM_EXIT_INTERNAL_ERROR suberror={InternalSuberror}",
        KvmExitReason.KVM_EXIT_FAIL_ENTRY => $"KVM_EXIT_FAIL_ENTRY reason=0x{FailEntryReason:X}",
        _ => Reason.ToString(),
    };

    private uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_run[offset..]);

    private ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(_run[offset..]);
}
