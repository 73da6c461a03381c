// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// A guest that makes host calls on the host's behalf, for tests and benchmarks: the test chooses the id and the
/// arguments, so every success and failure of the host-call ABI can be provoked.
/// <list type="bullet">
/// <item><c>call(id, a0, a1, a2, a3, a4)</c> → the host function's result (its status stays in the block).</item>
/// <item><c>call_status(id, a0, a1, a2, a3, a4)</c> → the status.</item>
/// <item><c>call6(ptr, len)</c>: input = seven u64 [id, a0 … a5] → the result (all six arguments used).</item>
/// <item><c>repeat(id, n)</c>: n host calls with arg0 = n, n-1 … 1 → the last result (n ≥ 1).</item>
/// <item><c>forever(id)</c>: host calls in an endless loop (for MaxExits and Timeout).</item>
/// </list>
/// </summary>
public static class HostCallProbe
{
    /// <summary>Assembles the probe guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), call = p.Export("call"), status = p.Export("call_status");
        Label call6 = p.Export("call6"), repeat = p.Export("repeat"), forever = p.Export("forever");

        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref call);
        ShiftArguments(a);
        p.HostCall(r10);
        a.ret();

        p.Place(ref status);
        ShiftArguments(a);
        p.HostCall(r10);
        a.mov(rax, rdx);
        a.ret();

        p.Place(ref call6);
        a.mov(r10, __qword_ptr[rdi]);
        a.mov(rsi, __qword_ptr[rdi + 16]);
        a.mov(rdx, __qword_ptr[rdi + 24]);
        a.mov(rcx, __qword_ptr[rdi + 32]);
        a.mov(r8, __qword_ptr[rdi + 40]);
        a.mov(r9, __qword_ptr[rdi + 48]);
        a.mov(rdi, __qword_ptr[rdi + 8]);
        p.HostCall(r10);
        a.ret();

        p.Place(ref repeat);
        Label again = a.CreateLabel();
        a.mov(r10, rdi);
        a.mov(rdi, rsi);
        a.Label(ref again);
        p.HostCall(r10);
        a.dec(rdi);
        a.jnz(again);
        a.ret();

        p.Place(ref forever);
        Label loop = a.CreateLabel();
        a.mov(r10, rdi);
        a.Label(ref loop);
        p.HostCall(r10);
        a.jmp(loop);
        return p.Build(start);
    }

    /// <summary>(id, a0 … a4) in RDI … R9 → id in R10 and a0 … a4 in RDI … R8, R9 = 0.</summary>
    private static void ShiftArguments(Assembler a)
    {
        a.mov(r10, rdi);
        a.mov(rdi, rsi);
        a.mov(rsi, rdx);
        a.mov(rdx, rcx);
        a.mov(rcx, r8);
        a.mov(r8, r9);
        a.xor(r9d, r9d);
    }
}
