// SPDX-License-Identifier: MIT
using FsCheck;
using FsCheck.Fluent;
using KvmSharp.Abi;
using KvmSharp.Emulation;
using KvmSharp.Kernel;

namespace KvmSharp.Properties.Tests;

/// <summary>
/// Random call sequences on the emulator, each compared call by call with a small model of the kernel rule it names
/// (kernel-spec.md). A counterexample is shrunk by FsCheck to a short sequence and reported with the model's and the
/// emulator's answers.
/// </summary>
public class EmulatorProperties
{
    private const int Runs = 150;
    private static readonly ulong Ps = (ulong)Environment.SystemPageSize;

    private static void CheckAll<T>(Arbitrary<T> arb, Func<T, bool> property) =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Runs), Prop.ForAll(arb, property));

    private static void AssertConsistent(EmulatedKernel kernel)
    {
        var broken = EmulatorInvariants.Check(kernel);
        Assert.True(broken.Count == 0, string.Join("; ", broken));
    }

    private static long Errno(Action call)
    {
        try
        {
            call();
            return 0;
        }
        catch (KvmException ex)
        {
            return -(long)ex.Errno;
        }
    }

    // ================================================================== memslot overlap

    /// <summary>One memslot call: create slot <c>Id</c> at GPA page <c>Page</c> with <c>Pages</c> pages, or delete it.</summary>
    public sealed record SlotOp(bool Delete, int Id, ulong Page, ulong Pages)
    {
        public override string ToString() => Delete ? $"delete {Id}" : $"create {Id} [{Page}, +{Pages})";
    }

    private static readonly Gen<List<SlotOp>> SlotOps =
        (from delete in Gen.Frequency((1, Gen.Constant(true)), (4, Gen.Constant(false)))
         from id in Gen.Choose(0, 7)
         from page in Gen.Choose(0, 40)
         from pages in Gen.Choose(1, 8)
         select new SlotOp(delete, id, (ulong)page, (ulong)pages)).ListOf().Select(l => l.ToList());

    /// <summary>Slot call sequences with their shrinker (also used by ShrinkingTests).</summary>
    internal static readonly Arbitrary<List<SlotOp>> SlotOpsArb = Arb.From(SlotOps, OpShrinkers.Slots);

    /// <summary>
    /// virt/kvm/kvm_main.c kvm_set_memory_region (kernel-spec.md §2.6 steps 4-6): creating a slot whose GPA range
    /// intersects another slot of the address space fails with EEXIST and changes nothing; a non-overlapping one is
    /// accepted; deleting needs an existing slot (else EINVAL). Re-using an existing id with another GPA is a MOVE,
    /// subject to the same overlap rule; with another size it is EINVAL. Model: a map id → [page, page+pages).
    /// </summary>
    [Fact]
    public void The_emulator_accepts_exactly_the_slots_that_overlap_no_other() => CheckAll(SlotOpsArb, ops =>
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        var model = new Dictionary<int, (ulong Page, ulong Pages)>();
        foreach (var op in ops)
        {
            long expected;
            bool exists = model.TryGetValue(op.Id, out var old);
            if (op.Delete)
            {
                expected = exists ? 0 : -(long)KvmSharp.Kernel.Errno.EINVAL;
            }
            else if (exists && old.Pages != op.Pages)
            {
                expected = -(long)KvmSharp.Kernel.Errno.EINVAL; // npages cannot change
            }
            else
            {
                bool overlaps = model.Any(p => p.Key != op.Id && p.Value.Page < op.Page + op.Pages && op.Page < p.Value.Page + p.Value.Pages);
                expected = overlaps && !(exists && old.Page == op.Page) ? -(long)KvmSharp.Kernel.Errno.EEXIST : 0;
            }

            var region = new kvm_userspace_memory_region2
            {
                slot = (uint)op.Id,
                guest_phys_addr = op.Page * Ps,
                memory_size = op.Delete ? 0 : op.Pages * Ps,
                // Never touched: no vCPU runs. Aligned and below TASK_SIZE so access_ok passes.
                userspace_addr = 0x7000_0000_0000UL,
            };
            long actual = Errno(() => vm.SetUserMemoryRegion2(region));
            Assert.True(expected == actual, $"{op}: model {Name(expected)}, emulator {Name(actual)}");
            if (actual == 0)
            {
                if (op.Delete) model.Remove(op.Id);
                else model[op.Id] = (op.Page, op.Pages);
            }
        }
        AssertConsistent(kernel);
        return true;
    });

    // ================================================================== fallocate

    /// <summary>A fallocate call or a host write of <c>Value</c> to the first byte of page <c>Offset</c>.</summary>
    public sealed record FallocOp(bool HostWrite, int Mode, long Offset, long Length, byte Value)
    {
        public override string ToString() => HostWrite ? $"write page {Offset} = 0x{Value:X2}" : $"fallocate(mode=0x{Mode:X}, 0x{Offset:X}, 0x{Length:X})";
    }

    private static Gen<long> Extent(int pages) => Gen.Frequency(
        (6, Gen.Choose(0, pages + 2).Select(p => (long)((ulong)p * Ps))),
        (2, Gen.Choose(0, pages + 2).SelectMany(p => Gen.Choose(1, (int)Ps - 1), (p, d) => (long)((ulong)p * Ps) + d)),
        (1, Gen.Elements(-1L, -(long)Ps, long.MaxValue, long.MaxValue - (long)Ps + 1, 1L << 62, long.MinValue)));

    private const int FilePages = 6;

    private static readonly Gen<List<FallocOp>> FallocOps =
        Gen.Frequency(
            (1, from page in Gen.Choose(0, FilePages - 1)
                from value in Gen.Choose(1, 255)
                select new FallocOp(true, 0, page, 0, (byte)value)),
            (4, from mode in Gen.Frequency((3, Gen.Elements(1, 3)), (1, Gen.Elements(0, 2)), (1, Gen.Choose(0, 0xff)), (1, Gen.Choose(0x100, 0x7fffffff)))
                from offset in Extent(FilePages)
                from length in Extent(FilePages)
                select new FallocOp(false, mode, offset, length, 0)))
        .ListOf().Select(l => l.ToList());

    private static readonly Arbitrary<List<FallocOp>> FallocOpsArb =
        Arb.From(FallocOps, ops => Shrinking.Sequence(ops, OpShrinkers.Falloc));

    /// <summary>
    /// The fallocate rules of kernel-spec.md §2.4: fs/open.c vfs_fallocate first (offset &lt; 0 or len &lt;= 0 → EINVAL;
    /// unknown mode bits or an invalid mode combination → EOPNOTSUPP; PUNCH_HOLE without KEEP_SIZE → EOPNOTSUPP;
    /// offset+len overflowing → EFBIG), then virt/kvm/guest_memfd.c kvm_gmem_fallocate (no KEEP_SIZE or any mode bit
    /// besides KEEP_SIZE|PUNCH_HOLE → EOPNOTSUPP; unaligned offset or len → EINVAL; punch never fails, also beyond
    /// i_size; allocate past i_size → EINVAL). Contents: a punched page reads zero afterwards, allocation keeps data.
    /// </summary>
    [Fact]
    public void Fallocate_follows_the_vfs_and_guest_memfd_rules() => CheckAll(FallocOpsArb, ops =>
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost());
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        ulong size = FilePages * Ps;
        using var gmem = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var mem = gmem.Map();
        byte[] content = new byte[FilePages];
        foreach (var op in ops)
        {
            if (op.HostWrite)
            {
                mem.Write((ulong)op.Offset * Ps, op.Value);
                content[op.Offset] = op.Value;
                continue;
            }
            long expected = FallocateModel(op.Mode, op.Offset, op.Length, (long)size);
            long actual = kernel.Fallocate(gmem.Handle, op.Mode, op.Offset, op.Length);
            Assert.True(expected == actual, $"{op}: model {Name(expected)}, emulator {Name(actual)}");
            if (actual == 0 && (op.Mode & LinuxConstants.FALLOC_FL_PUNCH_HOLE) != 0)
            {
                for (long p = 0; p < FilePages; p++)
                {
                    long start = p * (long)Ps;
                    if (start >= op.Offset && start < op.Offset + op.Length) content[p] = 0;
                }
            }
            for (int p = 0; p < FilePages; p++)
                Assert.True(content[p] == mem.Read<byte>((ulong)p * Ps), $"after {op}: page {p} holds 0x{mem.Read<byte>((ulong)p * Ps):X2}, model 0x{content[p]:X2}");
        }
        AssertConsistent(kernel);
        return true;
    });

    private static long FallocateModel(int mode, long offset, long len, long size)
    {
        const int KEEP = 0x01, PUNCH = 0x02, COLLAPSE = 0x08, ZERO = 0x10, INSERT = 0x20, UNSHARE = 0x40, WRITE_ZEROES = 0x80;
        const int MODE_MASK = PUNCH | COLLAPSE | ZERO | INSERT | UNSHARE | WRITE_ZEROES;
        long einval = -(long)KvmSharp.Kernel.Errno.EINVAL, enotsupp = -(long)KvmSharp.Kernel.Errno.EOPNOTSUPP;
        // vfs_fallocate.
        if (offset < 0 || len <= 0) return einval;
        if ((mode & ~(MODE_MASK | KEEP)) != 0) return enotsupp;
        switch (mode & MODE_MASK)
        {
            case 0 or UNSHARE or ZERO:
                break;
            case PUNCH when (mode & KEEP) != 0:
                break;
            case COLLAPSE or INSERT or WRITE_ZEROES when (mode & KEEP) == 0:
                break;
            default:
                return enotsupp;
        }
        if (offset + len < 0) return -(long)KvmSharp.Kernel.Errno.EFBIG;
        // kvm_gmem_fallocate.
        if ((mode & KEEP) == 0 || (mode & ~(KEEP | PUNCH)) != 0) return enotsupp;
        if (offset % (long)Ps != 0 || len % (long)Ps != 0) return einval;
        if ((mode & PUNCH) != 0) return 0;
        return offset + len > size ? einval : 0;
    }

    // ================================================================== in-place conversion

    /// <summary>A KVM_SET_MEMORY_ATTRIBUTES2 call, or a pin / unpin of page <c>Offset</c>.</summary>
    public sealed record ConvertOp(int Kind, ulong Offset, ulong Size, ulong Attributes)
    {
        public const int Convert = 0, Pin = 1, Unpin = 2;

        public override string ToString() => Kind switch
        {
            Pin => $"pin page {Offset}",
            Unpin => $"unpin page {Offset}",
            _ => $"set_attributes2(0x{Offset:X}, 0x{Size:X}, 0x{Attributes:X})",
        };
    }

    private const int GmemPages = 8;

    private static readonly Gen<List<ConvertOp>> ConvertOps =
        Gen.Frequency(
            (8, from first in Gen.Choose(0, GmemPages)
                from count in Gen.Choose(0, GmemPages - first + 1)
                from misalign in Gen.Frequency((9, Gen.Constant(0)), (1, Gen.Choose(1, 100)))
                from attrs in Gen.Frequency((5, Gen.Constant(KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE)), (4, Gen.Constant(0UL)), (1, Gen.Elements(1UL, 0x10UL, 0x9UL)))
                select new ConvertOp(ConvertOp.Convert, (ulong)first * Ps + (ulong)misalign, (ulong)count * Ps, attrs)),
            (1, from page in Gen.Choose(0, GmemPages - 1) select new ConvertOp(ConvertOp.Pin, (ulong)page, 0, 0)),
            (1, from page in Gen.Choose(0, GmemPages - 1) select new ConvertOp(ConvertOp.Unpin, (ulong)page, 0, 0)))
        .ListOf().Select(l => l.ToList());

    /// <summary>
    /// KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd ("[PATCH v8 13-14/46]", kernel-spec.md §4) against a per-page
    /// model: invalid attributes, size 0, unaligned or out-of-file ranges → EINVAL and nothing changes; a range
    /// already entirely as requested → 0; to private with a pinned page in the range → EAGAIN, error_offset = the
    /// lowest such page (never below the start), nothing changes; otherwise every page of the range takes the new
    /// attribute. After every call each page's host access verdict (kvm_gmem_fault_user_mapping: private → SIGBUS)
    /// matches the model. Pins (the GUP stand-in) succeed only on shared pages (EFAULT otherwise).
    /// </summary>
    [Fact]
    public void Conversions_match_a_per_page_model() => CheckAll(
        Arb.From(
            from initShared in Gen.Elements(true, false)
            from ops in ConvertOps
            select (initShared, ops),
            OpShrinkers.Conversions),
        input =>
    {
        var (initShared, ops) = input;
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        ulong size = GmemPages * Ps;
        using var gmem = vm.CreateGuestMemfd(size, GuestMemfdFlags.Mmap | (initShared ? GuestMemfdFlags.InitShared : GuestMemfdFlags.None));
        using var mem = gmem.Map();
        bool[] isPrivate = Enumerable.Repeat(!initShared, GmemPages).ToArray();
        var pins = new Dictionary<ulong, Stack<GuestMemfdPin>>();
        try
        {
            foreach (var op in ops)
            {
                switch (op.Kind)
                {
                    case ConvertOp.Pin:
                    {
                        long rc = kernel.PinGuestMemfdPage(gmem.Handle, op.Offset * Ps, out var pin);
                        long expected = isPrivate[op.Offset] ? -(long)KvmSharp.Kernel.Errno.EFAULT : 0;
                        Assert.True(expected == rc, $"{op}: model {Name(expected)}, emulator {Name(rc)}");
                        if (pin is not null)
                        {
                            if (!pins.TryGetValue(op.Offset, out var stack)) pins[op.Offset] = stack = new Stack<GuestMemfdPin>();
                            stack.Push(pin);
                        }
                        break;
                    }
                    case ConvertOp.Unpin:
                        if (pins.TryGetValue(op.Offset, out var held) && held.Count > 0) held.Pop().Dispose();
                        break;
                    default:
                        Convert(op);
                        break;
                }
                for (int p = 0; p < GmemPages; p++)
                {
                    var verdict = kernel.CheckHostAccess(mem.Address + (nint)((ulong)p * Ps), 1);
                    var want = isPrivate[p] ? HostAccessFault.PrivatePage : (HostAccessFault?)null;
                    Assert.True(want == verdict, $"after {op}: page {p} host verdict {verdict?.ToString() ?? "allowed"}, model {(isPrivate[p] ? "private" : "shared")}");
                }
            }
            AssertConsistent(kernel);
        }
        finally
        {
            foreach (var stack in pins.Values)
            {
                foreach (var pin in stack) pin.Dispose();
            }
        }
        return true;

        void Convert(ConvertOp op)
        {
            ulong pageMask = Ps - 1;
            bool toPrivate = op.Attributes == KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE;
            long expected;
            ulong expectedErrorOffset = 0;
            if ((op.Attributes & ~KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE) != 0 || op.Size == 0 ||
                ((op.Offset | op.Size) & pageMask) != 0 || op.Offset >= size || op.Offset + op.Size > size)
            {
                expected = -(long)KvmSharp.Kernel.Errno.EINVAL;
            }
            else
            {
                ulong first = op.Offset / Ps, end = (op.Offset + op.Size) / Ps;
                bool already = Enumerable.Range((int)first, (int)(end - first)).All(p => isPrivate[p] == toPrivate);
                ulong? pinned = null;
                for (ulong p = first; p < end && pinned is null; p++)
                {
                    if (pins.TryGetValue(p, out var s) && s.Count > 0) pinned = p;
                }
                if (!already && toPrivate && pinned is ulong pp)
                {
                    expected = -(long)KvmSharp.Kernel.Errno.EAGAIN;
                    expectedErrorOffset = pp * Ps;
                }
                else
                {
                    expected = 0;
                }
            }

            long actual = 0;
            ulong errorOffset = 0;
            try
            {
                gmem.SetAttributes(op.Offset, op.Size, op.Attributes);
            }
            catch (MemoryAttributesException ex)
            {
                actual = -(long)ex.Errno;
                errorOffset = ex.ErrorOffset;
            }
            Assert.True(expected == actual, $"{op}: model {Name(expected)}, emulator {Name(actual)}");
            if (actual == -(long)KvmSharp.Kernel.Errno.EAGAIN)
                Assert.True(expectedErrorOffset == errorOffset, $"{op}: error_offset 0x{errorOffset:X}, model 0x{expectedErrorOffset:X}");
            if (actual == 0)
            {
                for (ulong p = op.Offset / Ps; p < (op.Offset + op.Size) / Ps; p++) isPrivate[p] = toPrivate;
            }
        }
    });

    private static string Name(long rc) => rc < 0 ? ErrnoInfo.NameOf((int)-rc) : rc.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
