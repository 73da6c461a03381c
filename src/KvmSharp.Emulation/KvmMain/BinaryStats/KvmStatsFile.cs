// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.KvmMain.BinaryStats;

/// <summary>
/// A binary statistics fd (virt/kvm/kvm_main.c kvm_vm_stats_fops / kvm_vcpu_stats_fops: read = kvm_vm_stats_read /
/// kvm_vcpu_stats_read, release = kvm_put_kvm, llseek = noop_llseek) on the shared anon inode ("kvm-vm-stats",
/// "kvm-vcpu-stats:&lt;id&gt;"), opened O_RDONLY with FMODE_PREAD added (anon_inode_getfile_fmode). So, probed on
/// this host: read(2) reads at f_pos and advances it, pread(2) reads without moving it, lseek(2) answers f_pos and
/// moves nothing, write(2) is EBADF (no FMODE_WRITE), pwrite(2) ESPIPE (no FMODE_PWRITE), an ioctl ENOTTY (no
/// unlocked_ioctl), mmap ENODEV (no mmap; a shared writable mapping EACCES first, PROT_EXEC EPERM on the noexec
/// anon mount), fallocate EBADF, ftruncate EINVAL, fstat the anon inode (mode 0600, size 0).
/// </summary>
internal sealed class KvmStatsFile : KernelFile
{
    public KvmStatsFile(Kvm kvm, KvmStats stats, string anonName)
    {
        Kvm = kvm;
        Stats = stats;
        AnonName = anonName;
    }

    /// <summary>The VM the file pins (kvm_get_kvm in kvm_vm/vcpu_ioctl_get_stats_fd).</summary>
    public Kvm Kvm { get; }

    public KvmStats Stats { get; }

    /// <summary>The anon inode name /proc/self/fd shows after "anon_inode:".</summary>
    public string AnonName { get; }

    public override uint Mode => 0x180;

    public override ulong Device => KvmVmFile.AnonInodeFsDevice;

    public override ulong Inode => KvmVmFile.AnonInodeIno;

    public override bool HasNoopLlseek => true;

    /// <summary>FMODE_PREAD, added by anon_inode_getfile_fmode.</summary>
    public override bool CanPositionalIo => true;

    /// <summary>No FMODE_PWRITE: ksys_pwrite64 answers ESPIPE.</summary>
    public override bool CanPositionalWrite => false;

    /// <summary>The anon inode's mount is noexec (SB_I_NOEXEC): PROT_EXEC is EPERM before the missing mmap's ENODEV.</summary>
    public override bool NoExec => true;

    /// <summary>O_RDONLY: no FMODE_WRITE.</summary>
    public override bool ReadOnly => true;

    public override bool HasRead => true;

    /// <summary>
    /// virt/kvm/binary_stats.c kvm_stats_read: the file is header ‖ id (KVM_STATS_NAME_SIZE bytes) ‖ descriptors ‖
    /// values; "len = KVM_STATS_NAME_SIZE + size_header + size_desc + size_stats - pos; len = min(len, remain); if
    /// (len &lt;= 0) return 0;" then each block's part from pos is copied, and *offset = pos.
    /// </summary>
    public override long Read(Span<byte> buffer, ref long pos)
    {
        VmPageStats.Refresh(Kvm, Stats); // pages_4k/2m/1g from the MMU's leaves
        var t = Stats.Table;
        ReadOnlySpan<byte> data = Stats.Data;
        long total = t.HeaderBytes.Length + StatsTable.NameSize + t.DescBytes.Length + data.Length;
        long len = Math.Min(total - pos, buffer.Length);
        if (len <= 0) return 0;
        int done = 0;
        done += CopyBlock(t.HeaderBytes, 0, buffer, done, ref pos, (int)len);
        done += CopyBlock(Stats.IdBytes, t.Header.id_offset, buffer, done, ref pos, (int)len);
        done += CopyBlock(t.DescBytes, t.Header.desc_offset, buffer, done, ref pos, (int)len);
        CopyBlock(data, t.Header.data_offset, buffer, done, ref pos, (int)len);
        return len;
    }

    /// <summary>"copylen = block_offset + block_size - pos; copylen = min(copylen, remain); if (copylen &gt; 0) …".</summary>
    private static int CopyBlock(ReadOnlySpan<byte> block, long blockOffset, Span<byte> dest, int done, ref long pos, int len)
    {
        long copy = Math.Min(blockOffset + block.Length - pos, len - done);
        if (copy <= 0) return 0;
        block.Slice((int)(pos - blockOffset), (int)copy).CopyTo(dest[done..]);
        pos += copy;
        return (int)copy;
    }

    /// <summary>kvm_vm_stats_release / kvm_vcpu_stats_release: kvm_put_kvm.</summary>
    protected override void OnRelease() => Kvm.Put();
}
