// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.Mempolicy"/>: the NUMA calls on <see cref="MempolicyOps.Pages"/> anonymous pages mapped through
/// the kernel under test (the emulator knows only memory it mapped), with user pointers in the scratch pages. Compared:
/// the result, and on success the policy and first mask word, or each page's status.
/// </summary>
public sealed partial class KernelSession
{
    private MappedRegion? _numaPages;

    private string Mempolicy(FuzzOp op)
    {
        if (_numaPages is null)
        {
            long map = MappedRegion.Map(_kernel, null, (ulong)(MempolicyOps.Pages * PageSize), LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
                LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out _numaPages);
            if (map < 0) return "pages " + Describe(map);
        }
        var pages = _numaPages!;
        var scratch = Scratch;
        ulong u = op.U;
        nint first = pages.Address + MempolicyOps.FirstPage(u) * PageSize;
        var at = (DirtyBitmapAt)op.D;
        switch (op.E)
        {
            case MempolicyOps.Mbind:
            {
                scratch.Fill(0);
                scratch.Write(64, BitConverter.GetBytes(op.B));
                ulong len = (ulong)(MempolicyOps.PageCount(u) * PageSize);
                return Describe(_kernel.Mbind(first, len, (int)op.A, scratch.Address(at, 64), op.C, MempolicyOps.MbindFlags(u)));
            }
            case MempolicyOps.GetPolicy:
            {
                scratch.Fill(0x5A5A5A5A5A5A5A5A);
                ulong flags = MempolicyOps.GetFlags(u);
                nint address = (flags & KvmSharp.Kernel.Mempolicy.MPOL_F_ADDR) != 0 ? first + 123 : 0;
                long rc = _kernel.GetMempolicy(scratch.Address(DirtyBitmapAt.Scratch, 0), scratch.Address(at, 64), op.C, address, flags);
                if (rc != 0 || at != DirtyBitmapAt.Scratch) return Describe(rc);
                int policy = BinaryPrimitives.ReadInt32LittleEndian(scratch.Read(0, 4));
                ulong mask = BinaryPrimitives.ReadUInt64LittleEndian(scratch.Read(64, 8));
                return string.Create(CultureInfo.InvariantCulture, $"ok policy={policy} mask=0x{mask:X}");
            }
            case MempolicyOps.MovePages:
            {
                int count = MempolicyOps.PointerCount(u);
                // The pointers at scratch offset 2048: the session's pages (some not at a page start), NULL, the kernel half.
                var pointers = new ulong[count];
                for (int i = 0; i < count; i++)
                {
                    int page = (MempolicyOps.FirstPage(u) + i) % (MempolicyOps.Pages + 2);
                    pointers[i] = page < MempolicyOps.Pages ? (ulong)(pages.Address + page * PageSize + (i % 3) * 100) : page == MempolicyOps.Pages ? 0 : 0xFFFF_8000_0000_0000;
                }
                scratch.Fill(0x7777777777777777);
                scratch.Write(2048, MemoryMarshal.AsBytes(pointers.AsSpan()));
                long rc = _kernel.MovePages(0, (ulong)count, scratch.Address(DirtyBitmapAt.Scratch, 2048), scratch.Address(at, 0), (int)op.A);
                if (rc != 0 || at != DirtyBitmapAt.Scratch) return Describe(rc);
                var status = MemoryMarshal.Cast<byte, int>(scratch.Read(0, count * 4));
                return "ok " + string.Join(',', status.ToArray());
            }
            default:
            {
                var span = HostMemory.UnownedSpan(first, 1);
                if (MempolicyOps.Write(u)) span[0] = 1;
                else _ = Volatile.Read(ref span[0]);
                return "ok";
            }
        }
    }
}
