// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The same raw call sequences on the real kernel and on EmulatedKernel(HostMatching.LikeThisHostAsItIs()); every result (errno, or a
/// value where the value is the point) must agree. Runs where /dev/kvm is usable (it is on the development host).
/// </summary>
public sealed class DifferentialTests
{
    private sealed class Recorder
    {
        public List<string> Lines { get; } = [];

        /// <summary>Records an errno exactly; a success as "ok" (fd numbers and addresses differ between kernels).</summary>
        public long Rc(string name, long rc)
        {
            Lines.Add($"{name} => {(rc < 0 && rc >= -4095 ? ErrnoInfo.NameOf((int)-rc) : "ok")}");
            return rc;
        }

        public void Value(string name, long value) => Lines.Add($"{name} => {value}");
    }

    private static void Compare(Action<IKernel, Recorder> scenario, bool needsGuestMemfd = false)
    {
        Skip.IfNot(Raw.HostHasKvm, "/dev/kvm cannot be opened here: there is no real kernel to compare with");
        Skip.If(needsGuestMemfd && HostMatching.HostHasGuestMemfd == false,
            "this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD = 0): the scenario's guest_memfd calls would all be ENOTTY");
        var real = new Recorder();
        scenario(LinuxKernel.Instance, real);
        // The build of this machine (with or without CONFIG_KVM_GUEST_MEMFD): the preset must answer as it does.
        using var emu = new EmulatedKernel(HostMatching.LikeThisHostAsItIs());
        var emulated = new Recorder();
        scenario(emu, emulated);
        Assert.Equal(real.Lines, emulated.Lines);
        Assert.Equal(0, emu.OpenFdCount);
    }

    [SkippableFact]
    public void Every_capability_number_answers_the_same_on_dev_kvm_and_on_a_VM()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            for (int cap = 0; cap < 300; cap++)
            {
                r.Value($"sys cap {cap}", Raw.Cap(k, sys, cap));
                r.Value($"vm cap {cap}", Raw.Cap(k, vm, cap));
            }
            r.Value("cap -1", k.Ioctl(sys, KvmIoctls.KVM_CHECK_EXTENSION, ulong.MaxValue));
            r.Value("cap 2^32+234", k.Ioctl(sys, KvmIoctls.KVM_CHECK_EXTENSION, (1UL << 32) | 234));
        });
    }

    [SkippableFact]
    public void System_ioctls_and_vm_types_agree()
    {
        Compare((k, r) =>
        {
            r.Rc("open /dev/nope", k.Open("/dev/nope", O_RDWR, out _));
            using var sys = Raw.OpenKvm(k);
            r.Value("api", k.Ioctl(sys, KvmIoctls.KVM_GET_API_VERSION, 0UL));
            r.Rc("api arg 1", k.Ioctl(sys, KvmIoctls.KVM_GET_API_VERSION, 1UL));
            r.Value("vcpu mmap size", k.Ioctl(sys, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL));
            foreach (ulong type in new ulong[] { 1, 2, 3, 4, 5, 6, 31, 32, 1UL << 32 })
                r.Rc($"create vm {type}", k.Ioctl(sys, KvmIoctls.KVM_CREATE_VM, type));
            r.Rc("sys unknown _IO", k.Ioctl(sys, IoctlEncoding._IO(0xAE, 0x77), 0UL));
            r.Rc("sys foreign type", k.Ioctl(sys, 0x1234, 0UL));
            r.Rc("sys CREATE_GUEST_MEMFD", k.Ioctl(sys, KvmIoctls.KVM_CREATE_GUEST_MEMFD, new byte[64]));
            using var vm = Raw.CreateVm(k, sys);
            r.Rc("vm api", k.Ioctl(vm, KvmIoctls.KVM_GET_API_VERSION, 0UL));
            r.Rc("vm unknown", k.Ioctl(vm, IoctlEncoding._IO(0xAE, 0x77), 0UL));
            r.Rc("vm SET_MEMORY_ATTRIBUTES", k.Ioctl(vm, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, new byte[32]));
            r.Rc("vm SET_MEMORY_ATTRIBUTES2", k.Ioctl(vm, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, new byte[128]));
            r.Rc("vm CREATE_GUEST_MEMFD int 0", k.Ioctl(vm, KvmIoctls.KVM_CREATE_GUEST_MEMFD, 0UL));
            foreach (uint vfs in new uint[] { 0x5451, 0x5450 }) r.Rc($"vm vfs ioctl {vfs:X}", k.Ioctl(vm, vfs, 0UL));
            r.Rc("vm FIONBIO", k.Ioctl(vm, 0x5421, new byte[4]));
            r.Rc("vm FIONBIO null", k.Ioctl(vm, 0x5421, 0UL));
            r.Rc("vm lseek", k.Lseek(vm, 0, SEEK_SET));
            r.Rc("vm pread", k.Pread(vm, new byte[8], 0));
            r.Rc("vm read", k.Read(vm, new byte[8]));
            r.Rc("vm ftruncate", k.Ftruncate(vm, 0));
            r.Rc("vm fallocate", k.Fallocate(vm, FALLOC_FL_KEEP_SIZE, 0, 4096));
            r.Rc("vm mmap", k.Mmap(0, 4096, PROT_READ, MAP_SHARED, vm, 0, out _));
            r.Rc("sys read", k.Read(sys, new byte[8]));
            r.Rc("sys pread", k.Pread(sys, new byte[8], 0));
            r.Rc("sys lseek", k.Lseek(sys, 0, SEEK_SET));
            r.Rc("sys fallocate", k.Fallocate(sys, FALLOC_FL_KEEP_SIZE, 0, 4096));
            r.Rc("sys mmap", k.Mmap(0, 4096, PROT_READ, MAP_SHARED, sys, 0, out _));
            Assert.Equal(0, k.Fstat(sys, out var s1));
            Assert.Equal(0, k.Fstat(vm, out var s2));
            r.Value("sys mode", s1.Mode);
            r.Value("vm mode", s2.Mode);
        });
    }

    [SkippableFact]
    public void Guest_memfd_creation_and_file_operations_agree()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            int ps = Raw.Page;
            for (int bit = 0; bit < 64; bit++)
            {
                long rc = r.Rc($"flag bit {bit}", Raw.CreateGmemRc(k, vm, (ulong)ps, 1UL << bit));
                if (rc >= 0) k.Close((int)rc);
            }
            foreach (ulong size in new ulong[] { 0, 1, (ulong)ps - 1, (ulong)ps + 1, 1UL << 63, ulong.MaxValue - 4095 })
                r.Rc($"size {size}", Raw.CreateGmemRc(k, vm, size, 0));
            r.Rc("bad flag and bad size", Raw.CreateGmemRc(k, vm, 1, 1UL << 7));
            long big = r.Rc("size 2^62", Raw.CreateGmemRc(k, vm, 1UL << 62, 0));
            if (big >= 0) k.Close((int)big);
            long res = r.Rc("reserved non-zero", Raw.CreateGmemRc(k, vm, (ulong)ps, 0, reserved0: 7));
            if (res >= 0) k.Close((int)res);

            using var g = Raw.CreateGmem(k, vm, 4 * (ulong)ps, 3);
            var buf = new byte[16];
            r.Rc("read", k.Read(g, buf));
            r.Rc("read empty", k.Read(g, Span<byte>.Empty));
            r.Rc("write", k.Write(g, buf));
            r.Rc("pread", k.Pread(g, buf, 0));
            r.Rc("pread -1", k.Pread(g, buf, -1));
            r.Rc("pwrite", k.Pwrite(g, buf, 0));
            r.Rc("lseek", k.Lseek(g, 0, SEEK_SET));
            r.Rc("lseek whence 9", k.Lseek(g, 0, 9));
            r.Rc("ftruncate", k.Ftruncate(g, 2 * ps));
            r.Rc("ftruncate -1", k.Ftruncate(g, -1));
            r.Rc("ioctl unknown", k.Ioctl(g, IoctlEncoding._IO(0xAE, 0x77), 0UL));
            r.Rc("ioctl CHECK_EXTENSION", k.Ioctl(g, KvmIoctls.KVM_CHECK_EXTENSION, 234UL));
            r.Rc("ioctl ATTRIBUTES2", k.Ioctl(g, KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, new byte[128]));
            var bsz = new byte[4];
            r.Rc("FIGETBSZ", k.Ioctl(g, 2, bsz));
            r.Value("FIGETBSZ value", BitConverter.ToInt32(bsz));
            Assert.Equal(0, k.Fstat(g, out var st));
            r.Value("st_mode", st.Mode);
            r.Value("st_size", st.Size);
            r.Value("st_blksize", st.BlockSize);
            r.Value("st_blocks", st.Blocks);
            using var g2 = Raw.CreateGmem(k, vm, (ulong)ps, 0);
            Assert.Equal(0, k.Fstat(g2, out var st2));
            r.Value("distinct inodes", st.Inode != st2.Inode ? 1 : 0);
            r.Value("same device", st.Device == st2.Device ? 1 : 0);
        }, needsGuestMemfd: true);
    }

    [SkippableFact]
    public void Fallocate_table_agrees()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            long ps = Raw.Page, size = 4 * ps;
            const int KS = FALLOC_FL_KEEP_SIZE, PH = FALLOC_FL_PUNCH_HOLE;
            var table = new (string, int, long, long)[]
            {
                ("mode 0", 0, 0, ps), ("alloc all", KS, 0, size), ("punch", KS | PH, 0, ps), ("punch without KS", PH, 0, ps),
                ("NO_HIDE_STALE", 4 | KS, 0, ps), ("ZERO_RANGE|KS", 0x10 | KS, 0, ps), ("ZERO_RANGE", 0x10, 0, ps),
                ("COLLAPSE", 8, 0, ps), ("COLLAPSE|KS", 8 | KS, 0, ps), ("INSERT", 0x20, 0, ps), ("UNSHARE|KS", 0x40 | KS, 0, ps),
                ("WRITE_ZEROES", 0x80, 0, ps), ("0x100|KS", 0x100 | KS, 0, ps), ("mode -1", -1, 0, ps),
                ("off -1", KS, -1, ps), ("len 0", KS, 0, 0), ("len -1", KS, 0, -1), ("mode 0 off -1", 0, -1, ps),
                ("bad mode off -1", 0x100, -1, ps), ("overflow", KS, long.MaxValue - ps + 1, 2 * ps),
                ("mode 0 overflow", 0, long.MaxValue - ps + 1, 2 * ps), ("punch overflow", KS | PH, long.MaxValue - ps + 1, 2 * ps),
                ("bad mode overflow", 0x100, long.MaxValue - ps + 1, 2 * ps), ("alloc near max", KS, long.MaxValue - 2 * ps + 1, ps),
                ("punch near max", KS | PH, long.MaxValue - 2 * ps + 1, ps), ("unaligned off", KS, 1, ps), ("unaligned len", KS, 0, 1),
                ("mode 0 unaligned", 0, 1, 1), ("alloc at size", KS, size, ps), ("alloc straddle", KS, size - ps, 2 * ps),
                ("punch at size", KS | PH, size, ps), ("punch straddle", KS | PH, size - ps, 2 * ps), ("punch far", KS | PH, 1L << 40, ps),
                ("punch unaligned beyond", KS | PH, size + 1, ps), ("punch ps-1", KS | PH, ps - 1, ps), ("realloc punched", KS, 0, ps),
            };
            foreach (ulong flags in new ulong[] { 0, 3 })
            {
                using var g = Raw.CreateGmem(k, vm, (ulong)size, flags);
                foreach (var (name, mode, off, len) in table) r.Rc($"flags {flags} {name}", k.Fallocate(g, mode, off, len));
                foreach (var (off, len) in new (long, long)[] { (0, 1), (0, ps - 1), (0, ps + 1), (1, 1), (1, ps - 1), (1, ps), (1, ps + 1), (ps, 1), (ps, ps - 1), (ps, ps + 1) })
                    r.Rc($"flags {flags} invalid punch ({off},{len})", k.Fallocate(g, KS | PH, off, len));
            }
        }, needsGuestMemfd: true);
    }

    [SkippableFact]
    public void Mmap_rules_agree()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            ulong ps = (ulong)Raw.Page;
            using var g = Raw.CreateGmem(k, vm, 4 * ps, 3);
            using var g0 = Raw.CreateGmem(k, vm, 4 * ps, 0);
            void M(string name, KernelFd fd, ulong len, int prot, int flags, long off)
            {
                long rc = r.Rc(name, k.Mmap(0, len, prot, flags, fd, off, out nint a));
                if (rc == 0) Assert.Equal(0, k.Munmap(a, len));
            }
            const int RW = PROT_READ | PROT_WRITE;
            M("no MMAP shared", g0, ps, RW, MAP_SHARED, 0);
            M("no MMAP private", g0, ps, RW, MAP_PRIVATE, 0);
            M("no MMAP len 0", g0, 0, RW, MAP_SHARED, 0);
            M("private", g, ps, RW, MAP_PRIVATE, 0);
            M("private read-only", g, ps, PROT_READ, MAP_PRIVATE, 0);
            M("shared", g, ps, RW, MAP_SHARED, 0);
            M("shared 4x file", g, 16 * ps, RW, MAP_SHARED, 0);
            M("offset beyond file", g, ps, RW, MAP_SHARED, 1L << 30);
            M("offset unaligned", g, ps, RW, MAP_SHARED, 1);
            M("len 0", g, 0, RW, MAP_SHARED, 0);
            M("offset -page", g, ps, RW, MAP_SHARED, -(long)ps);
            M("flags 0", g, ps, PROT_READ, 0, 0);
            M("MAP_SHARED_VALIDATE", g, ps, PROT_READ, 3, 0);
            M("MAP_SHARED_VALIDATE + MAP_SYNC", g, ps, PROT_READ, 3 | 0x80000, 0);
            M("PROT_EXEC", g, ps, PROT_READ | PROT_EXEC, MAP_SHARED, 0);
        }, needsGuestMemfd: true);
    }

    [SkippableFact]
    public void Memslot_rules_agree()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            using var vm2 = Raw.CreateVm(k, sys);
            ulong ps = (ulong)Raw.Page;
            using var g = Raw.CreateGmem(k, vm, 16 * ps, 3);
            using var g0 = Raw.CreateGmem(k, vm, 16 * ps, 0);
            using var other = Raw.CreateGmem(k, vm2, 16 * ps, 0);
            Assert.Equal(0, k.Mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, null, 0, out nint anon));
            ulong ua = (ulong)anon;
            const uint GM = KvmConstants.KVM_MEM_GUEST_MEMFD, LOG = KvmConstants.KVM_MEM_LOG_DIRTY_PAGES, RO = KvmConstants.KVM_MEM_READONLY;
            int gfd = g.Number;
            r.Rc("v1 GUEST_MEMFD", Raw.Region1(k, vm, 0, GM, 0, ps, ua));
            r.Rc("v1 flag 8", Raw.Region1(k, vm, 0, 8, 0, ps, ua));
            r.Rc("v1 RO", Raw.Region1(k, vm, 0, RO, 0, ps, ua));
            r.Rc("v1 delete", Raw.Region1(k, vm, 0, 0, 0, 0, 0));
            r.Rc("v1 delete again", Raw.Region1(k, vm, 0, 0, 0, 0, 0));
            r.Rc("flag 8", Raw.Region2(k, vm, 0, 8, 0, ps, ua));
            r.Rc("gmem|LOG", Raw.Region2(k, vm, 0, GM | LOG, 0, ps, 0, 0, gfd));
            r.Rc("gmem|RO", Raw.Region2(k, vm, 0, GM | RO, 0, ps, 0, 0, gfd));
            r.Rc("size unaligned", Raw.Region2(k, vm, 0, GM, 0, ps + 1, 0, 0, gfd));
            r.Rc("gpa unaligned", Raw.Region2(k, vm, 0, GM, 1, ps, 0, 0, gfd));
            r.Rc("uaddr unaligned", Raw.Region2(k, vm, 0, GM, 0, ps, 1, 0, gfd));
            r.Rc("uaddr non-canonical", Raw.Region2(k, vm, 0, GM, 0, ps, 1UL << 47, 0, gfd));
            r.Rc("uaddr ends past TASK_SIZE_MAX", Raw.Region2(k, vm, 0, GM, 0, ps, 0x7fff_ffff_f000, 0, gfd));
            r.Rc("uaddr ends at TASK_SIZE_MAX", Raw.Region2(k, vm, 0, GM, 0, ps, 0x7fff_ffff_e000, 0, gfd));
            r.Rc("delete it", Raw.Region2(k, vm, 0, 0, 0, 0));
            r.Rc("offset unaligned", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 1, gfd));
            r.Rc("offset wraps", Raw.Region2(k, vm, 0, GM, 0, 2 * ps, 0, ulong.MaxValue - ps + 1, gfd));
            r.Rc("slot 32764", Raw.Region2(k, vm, 32764, GM, 0, ps, 0, 0, gfd));
            r.Rc("slot 32763", Raw.Region2(k, vm, 32763, GM, 0, ps, 0, 0, gfd));
            r.Rc("delete 32763", Raw.Region2(k, vm, 32763, 0, 0, 0));
            r.Rc("as_id 1", Raw.Region2(k, vm, 1 << 16, GM, 0, ps, 0, 0, gfd));
            r.Rc("gpa wraps", Raw.Region2(k, vm, 0, 0, ulong.MaxValue - ps + 1, 2 * ps, ua));
            r.Rc("2^31 pages", Raw.Region2(k, vm, 0, 0, 0, (1UL << 31) * ps, 0));
            r.Rc("gpa 2^52", Raw.Region2(k, vm, 0, 0, 1UL << 52, ps, ua));
            r.Rc("gpa 2^48", Raw.Region2(k, vm, 0, 0, 1UL << 48, ps, ua));
            r.Rc("delete 2^48", Raw.Region2(k, vm, 0, 0, 0, 0));
            r.Rc("delete missing", Raw.Region2(k, vm, 5, 0, 0, 0));
            r.Rc("delete missing, bad flags", Raw.Region2(k, vm, 5, 8, 0, 0));
            r.Rc("delete slot 40000", Raw.Region2(k, vm, 40000, 0, 0, 0));
            r.Rc("closed fd", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 0, 999));
            r.Rc("fd -1", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 0, -1));
            r.Rc("fd = vm", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 0, vm.Number));
            r.Rc("fd = /dev/kvm", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 0, sys.Number));
            r.Rc("other VM's gmem", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 0, other.Number));
            r.Rc("offset at size", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 16 * ps, gfd));
            r.Rc("offset+size past size", Raw.Region2(k, vm, 0, GM, 0, 2 * ps, 0, 15 * ps, gfd));
            r.Rc("offset negative", Raw.Region2(k, vm, 0, GM, 0, ps, 0, 1UL << 63, gfd));
            r.Rc("bind [0,4)", Raw.Region2(k, vm, 0, GM, 0, 4 * ps, 0, 0, gfd));
            r.Rc("same again", Raw.Region2(k, vm, 0, GM, 0, 4 * ps, 0, 0, gfd));
            r.Rc("drop GUEST_MEMFD flag", Raw.Region2(k, vm, 0, 0, 0, 4 * ps, 0));
            r.Rc("move gmem slot", Raw.Region2(k, vm, 0, 0, 1 << 20, 4 * ps, 0));
            r.Rc("gpa overlap", Raw.Region2(k, vm, 1, GM, ps, ps, 0, 8 * ps, gfd));
            r.Rc("gpa overlap plain", Raw.Region2(k, vm, 1, 0, ps, ps, ua));
            r.Rc("gmem offset overlap", Raw.Region2(k, vm, 1, GM, 1 << 20, ps, 0, 3 * ps, gfd));
            r.Rc("both overlaps", Raw.Region2(k, vm, 1, GM, ps, ps, 0, 3 * ps, gfd));
            r.Rc("adjacent", Raw.Region2(k, vm, 1, GM, 1 << 20, ps, 0, 4 * ps, gfd));
            r.Rc("no-MMAP gmem, uaddr 0", Raw.Region2(k, vm, 2, GM, 2 << 20, ps, 0, 0, g0.Number));
            r.Rc("plain slot", Raw.Region2(k, vm, 3, 0, 3 << 20, 2 * ps, ua));
            r.Rc("plain same", Raw.Region2(k, vm, 3, 0, 3 << 20, 2 * ps, ua));
            r.Rc("plain move", Raw.Region2(k, vm, 3, 0, 4 << 20, 2 * ps, ua));
            r.Rc("plain change uaddr", Raw.Region2(k, vm, 3, 0, 4 << 20, 2 * ps, ua + ps));
            r.Rc("plain change size", Raw.Region2(k, vm, 3, 0, 4 << 20, ps, ua));
            r.Rc("plain add RO", Raw.Region2(k, vm, 3, RO, 4 << 20, 2 * ps, ua));
            r.Rc("plain add LOG", Raw.Region2(k, vm, 3, LOG, 4 << 20, 2 * ps, ua));
            r.Rc("plain move onto slot 0", Raw.Region2(k, vm, 3, LOG, 0, 2 * ps, ua));
            r.Rc("plain add GUEST_MEMFD", Raw.Region2(k, vm, 3, GM, 4 << 20, 2 * ps, ua, 0, gfd));
            r.Rc("delete slot 0", Raw.Region2(k, vm, 0, 0, 0, 0));
            r.Rc("rebind freed range", Raw.Region2(k, vm, 0, GM, 0, 4 * ps, 0, 0, gfd));
            g.Dispose();
            r.Rc("delete after gmem close", Raw.Region2(k, vm, 0, 0, 0, 0));
            r.Rc("bind closed fd number", Raw.Region2(k, vm, 4, GM, 8 << 20, ps, 0, 0, gfd));
            Assert.Equal(0, k.Munmap(anon, 1 << 20));
        }, needsGuestMemfd: true);
    }

    [SkippableFact]
    public void Host_mapping_sees_the_same_bytes_and_punch_hole_reads_zero_on_both_kernels()
    {
        Compare((k, r) =>
        {
            using var sys = Raw.OpenKvm(k);
            using var vm = Raw.CreateVm(k, sys);
            int ps = Raw.Page;
            using var g = Raw.CreateGmem(k, vm, 4 * (ulong)ps, 3);
            Assert.Equal(0, k.Mmap(0, 4 * (ulong)ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint a));
            Assert.Equal(0, k.Mmap(0, 4 * (ulong)ps, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0, out nint b));
            System.Runtime.InteropServices.Marshal.WriteByte(a, ps + 5, 0xaa);
            r.Value("alias", System.Runtime.InteropServices.Marshal.ReadByte(b, ps + 5));
            r.Rc("punch", k.Fallocate(g, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, ps, ps));
            r.Value("after punch", System.Runtime.InteropServices.Marshal.ReadByte(b, ps + 5));
            Assert.Equal(0, k.Munmap(a, 4 * (ulong)ps));
            Assert.Equal(0, k.Munmap(b, 4 * (ulong)ps));
        }, needsGuestMemfd: true);
    }
}
