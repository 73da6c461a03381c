// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// <c>sum</c>: functions over an input buffer passed through the call ABI.
/// <list type="bullet">
/// <item><c>sum(ptr, len)</c> → the sum of the bytes (u64).</item>
/// <item><c>fletcher64(ptr, len)</c> → Fletcher-style checksum over 32-bit words: (sum2 &lt;&lt; 32) | sum1, each mod 2^32-1 (len a multiple of 4).</item>
/// <item><c>add(a, b)</c> → a + b (plain register arguments).</item>
/// <item><c>reverse(ptr, len)</c> → len; hands back the bytes reversed as the call's output (CallRegion.output_ptr/len).</item>
/// <item><c>_start</c> → exit(0).</item>
/// </list>
/// </summary>
public static class Sum
{
    /// <summary>Assembles the <c>sum</c> guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        Label sum = p.Export("sum");
        Label fletcher = p.Export("fletcher64");
        Label add = p.Export("add");
        Label reverse = p.Export("reverse");

        p.Place(ref start);
        p.ExitWith(0);

        // sum(RDI = ptr, RSI = len)
        p.Place(ref sum);
        Label loop = a.CreateLabel(), done = a.CreateLabel();
        a.xor(eax, eax);
        a.xor(ecx, ecx);
        a.Label(ref loop);
        a.cmp(rcx, rsi);
        a.jae(done);
        a.movzx(edx, __byte_ptr[rdi + rcx]);
        a.add(rax, rdx);
        a.inc(rcx);
        a.jmp(loop);
        a.Label(ref done);
        a.ret();

        // fletcher64(RDI = ptr, RSI = len): sum1 += word; sum2 += sum1; both mod 0xFFFFFFFF.
        p.Place(ref fletcher);
        Label floop = a.CreateLabel(), fdone = a.CreateLabel();
        a.xor(r8d, r8d);                  // sum1
        a.xor(r9d, r9d);                  // sum2
        a.mov(r10d, 0xFFFF_FFFF);         // modulus
        a.xor(ecx, ecx);
        a.Label(ref floop);
        a.lea(r11, __[rcx + 4]);
        a.cmp(r11, rsi);
        a.ja(fdone);
        a.mov(eax, __dword_ptr[rdi + rcx]);
        a.add(rax, r8);
        a.xor(edx, edx);
        a.div(r10);
        a.mov(r8, rdx);
        a.lea(rax, __[r9 + r8]);
        a.xor(edx, edx);
        a.div(r10);
        a.mov(r9, rdx);
        a.mov(rcx, r11);
        a.jmp(floop);
        a.Label(ref fdone);
        a.mov(rax, r9);
        a.shl(rax, 32);
        a.or(rax, r8);
        a.ret();

        // add(RDI, RSI)
        p.Place(ref add);
        a.lea(rax, __[rdi + rsi]);
        a.ret();

        // reverse(RDI = ptr, RSI = len): out[i] = in[len-1-i], out placed right after the input.
        p.Place(ref reverse);
        Label rloop = a.CreateLabel(), rdone = a.CreateLabel();
        a.lea(r8, __[rdi + rsi]);         // out
        a.xor(ecx, ecx);
        a.Label(ref rloop);
        a.cmp(rcx, rsi);
        a.jae(rdone);
        a.mov(rdx, rsi);
        a.sub(rdx, rcx);
        a.mov(al, __byte_ptr[rdi + rdx - 1]);
        a.mov(__byte_ptr[r8 + rcx], al);
        a.inc(rcx);
        a.jmp(rloop);
        a.Label(ref rdone);
        a.mov(rax, CallRegion.Address(CallRegion.OutputPtr));
        a.mov(__qword_ptr[rax], r8);
        a.mov(__qword_ptr[rax + 8], rsi);
        a.mov(rax, rsi);
        a.ret();

        return p.Build(start);
    }

    /// <summary>The reference for <c>fletcher64</c>, for tests and the CLI demo.</summary>
    public static ulong Fletcher64(ReadOnlySpan<byte> data)
    {
        const ulong Mod = 0xFFFF_FFFF;
        ulong s1 = 0, s2 = 0;
        for (int i = 0; i + 4 <= data.Length; i += 4)
        {
            s1 = (s1 + System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data[i..])) % Mod;
            s2 = (s2 + s1) % Mod;
        }
        return (s2 << 32) | s1;
    }
}
