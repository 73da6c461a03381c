// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Tests;

/// <summary>The exception report without a guest: the block's decoding, the Detail text, and the handler code itself.</summary>
public sealed class GuestExceptionTests
{
    private static byte[] Block(ulong vector, ulong errorCode = 0, ulong rip = 0x100123, ulong cr2 = 0)
    {
        var block = new byte[ExceptionBlock.Size];
        void Put(ulong field, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(block.AsSpan((int)field), value);
        Put(ExceptionBlock.Vector, vector);
        Put(ExceptionBlock.ErrorCode, errorCode);
        Put(ExceptionBlock.Rip, rip);
        Put(ExceptionBlock.Cs, Gdt.CodeSelector);
        Put(ExceptionBlock.Rflags, 0x10002);
        Put(ExceptionBlock.Rsp, 0x27FF8);
        Put(ExceptionBlock.Ss, Gdt.DataSelector);
        Put(ExceptionBlock.Cr2, cr2);
        return block;
    }

    [Theory]
    [InlineData(0, 0UL, 0UL, "divide error (#DE) at rip 0x100123")]
    [InlineData(6, 0UL, 0x1234UL, "invalid opcode (#UD) at rip 0x100123")]
    [InlineData(14, 0x2UL, 0x400000UL, "page fault (#PF) at rip 0x100123: cr2 0x400000, error code 0x2 (write, not present)")]
    [InlineData(14, 0x0UL, 0x10UL, "page fault (#PF) at rip 0x100123: cr2 0x10, error code 0x0 (read, not present)")]
    [InlineData(14, 0x11UL, 0x88000UL, "page fault (#PF) at rip 0x100123: cr2 0x88000, error code 0x11 (instruction fetch, protection violation)")]
    [InlineData(14, 0xFUL, 0x8UL, "page fault (#PF) at rip 0x100123: cr2 0x8, error code 0xF (write, user, protection violation, reserved bit set)")]
    [InlineData(13, 0x0UL, 0UL, "general protection (#GP) at rip 0x100123: error code 0x0")]
    [InlineData(13, 0x33UL, 0UL, "general protection (#GP) at rip 0x100123: error code 0x33 (IDT vector 6, external)")]
    [InlineData(11, 0x1CUL, 0UL, "segment not present (#NP) at rip 0x100123: error code 0x1C (LDT selector 0x18)")]
    [InlineData(8, 0x0UL, 0UL, "double fault (#DF) at rip 0x100123: error code 0x0")]
    [InlineData(15, 0x0UL, 0UL, "reserved (vector 15) at rip 0x100123")]
    public void Detail_names_the_exception_and_decodes_its_values(int vector, ulong errorCode, ulong cr2, string detail)
    {
        var e = GuestException.FromBlock(Block((ulong)vector, errorCode, cr2: cr2));
        Assert.Equal(detail, e.ToString());
    }

    [Fact]
    public void Only_the_vectors_that_push_one_have_an_error_code_and_only_a_page_fault_has_cr2()
    {
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            var e = GuestException.FromBlock(Block((ulong)vector, errorCode: 0x5, cr2: 0x77));
            Assert.Equal(vector, e.Vector);
            Assert.Equal(Idt.HasErrorCode(vector) ? 0x5UL : null, e.ErrorCode);
            Assert.Equal(vector == 14 ? 0x77UL : null, e.Cr2);
            Assert.Equal((0x100123UL, Gdt.CodeSelector, Gdt.DataSelector, 0x10002UL, 0x27FF8UL), (e.Rip, e.Cs, e.Ss, e.Rflags, e.Rsp));
        }
        // SDM Vol. 3A Table 6-1.
        Assert.Equal([8, 10, 11, 12, 13, 14, 17, 21, 29, 30], Enumerable.Range(0, Idt.Vectors).Where(Idt.HasErrorCode));
    }

    [Fact]
    public void A_block_a_guest_filled_itself_with_a_vector_beyond_31_is_reported_as_such()
    {
        // Any guest may OUT to the exception port; what it wrote is reported, never trusted to index anything.
        var e = GuestException.FromBlock(Block(0xFFFF_FFFF_FFFF_FFFF, errorCode: 7, cr2: 9));
        Assert.Equal(int.MaxValue, e.Vector);
        Assert.Equal((null, null), (e.ErrorCode, e.Cr2));
        Assert.Equal($"not an exception vector (vector {int.MaxValue}) at rip 0x100123", e.ToString());
    }

    [Fact]
    public void Each_gate_leads_to_a_stub_that_pushes_a_0_error_code_only_where_the_cpu_pushes_none()
    {
        byte[] code = ExceptionHandlers.Bytes.ToArray();
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            ulong low = BinaryPrimitives.ReadUInt64LittleEndian(Idt.Bytes[(vector * 16)..]);
            ulong high = BinaryPrimitives.ReadUInt64LittleEndian(Idt.Bytes[(vector * 16 + 8)..]);
            ulong target = (low & 0xFFFF) | ((low >> 32) & 0xFFFF_0000) | (high << 32);
            Assert.Equal(ExceptionHandlers.Stub(vector), target);
            // Present, DPL 0, 64-bit interrupt gate, IST1, the code segment.
            Assert.Equal((1UL, 0xEUL, 1UL, (ulong)Gdt.CodeSelector), ((low >> 47) & 1, (low >> 40) & 0xF, (low >> 32) & 7, (low >> 16) & 0xFFFF));

            var decoder = Decoder.Create(64, new ByteArrayCodeReader(code, (int)(target - Layout.ExceptionHandlers), code.Length - (int)(target - Layout.ExceptionHandlers)));
            decoder.IP = target;
            var pushed = new List<ulong>();
            Instruction i;
            while ((i = decoder.Decode()).Mnemonic == Mnemonic.Push) pushed.Add(i.GetImmediate(0));
            Assert.Equal(Mnemonic.Jmp, i.Mnemonic);
            Assert.Equal(Idt.HasErrorCode(vector) ? [(ulong)vector] : [0UL, (ulong)vector], pushed);
        }
    }
}
