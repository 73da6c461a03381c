// SPDX-License-Identifier: MIT
using System.Text;
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// <c>hostcall</c>: a guest that uses host functions. <c>_start</c> looks up "log" and "lookup" by name (the built-in
/// resolve, id 0), logs a line through the host, asks the host for the value of "greeting" into a buffer of its own,
/// prints that value on COM1 and exits 0 (exit 10 + n when step n fails). <c>roll(sides)</c> → 1 + random() mod sides,
/// calling "random" by its fixed id <see cref="RandomId"/> (0 when sides is 0).
/// </summary>
public static class HostCalling
{
    /// <summary>The fixed id of <c>log</c> in <see cref="Functions"/>.</summary>
    public const uint LogId = 1;
    /// <summary>The fixed id of <c>lookup</c> in <see cref="Functions"/>.</summary>
    public const uint LookupId = 2;
    /// <summary>
    /// The fixed id of <c>random</c> in <see cref="Functions"/>; the guest calls it without resolving.
    /// </summary>
    public const uint RandomId = 3;

    /// <summary>lookup's status for a key it does not know.</summary>
    public const HostCallStatus NotFound = HostCallStatus.FirstApplicationStatus;

    /// <summary>The line <c>_start</c> logs through <c>log</c>.</summary>
    public const string LogLine = "guest: asking the host for 'greeting'";

    /// <summary>What lookup knows.</summary>
    public static IReadOnlyDictionary<string, string> Table { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["greeting"] = "Hello from a host function!",
        ["answer"] = "42",
    };

    /// <summary>
    /// The demo's host functions: <c>log(ptr, len)</c> writes the guest's text as one line to <paramref name="log"/>
    /// and returns len; <c>lookup(key_ptr, key_len, out_ptr, out_cap)</c> copies the value of the key (at most out_cap
    /// bytes) and returns its full length, or status <see cref="NotFound"/>; <c>random()</c> → the next u64 of a
    /// generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static HostFunctions Functions(TextWriter log, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(log);
        var random = new Random(seed);
        var functions = new HostFunctions();
        functions.Add(LogId, "log", c =>
        {
            log.WriteLine("[host log] " + c.ReadUtf8(c.Args[0], c.Args[1]));
            return c.Args[1];
        });
        functions.Add(LookupId, "lookup", c =>
        {
            if (c.Args[1] > HostFunctions.MaxNameLength)
            {
                c.Status = HostCallStatus.BadArgument;
                return 0;
            }
            if (!Table.TryGetValue(c.ReadUtf8(c.Args[0], c.Args[1]), out string? value))
            {
                c.Status = NotFound;
                return 0;
            }
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            c.Write(c.Args[2], bytes.AsSpan(0, (int)Math.Min((ulong)bytes.Length, c.Args[3])));
            return (ulong)bytes.Length;
        });
        functions.Add(RandomId, "random", _ => (ulong)random.NextInt64(long.MinValue, long.MaxValue));
        return functions;
    }

    /// <summary>Assembles the <c>hostcall</c> guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), roll = p.Export("roll");
        Label logName = a.CreateLabel(), lookupName = a.CreateLabel(), line = a.CreateLabel(), key = a.CreateLabel();
        byte[] lineBytes = Encoding.ASCII.GetBytes(LogLine);
        const ulong buffer = Layout.CallData;
        const int capacity = 256;

        p.Place(ref start);
        // rbx = resolve("log"), r12 = resolve("lookup"): callee-saved, the host call keeps them.
        a.lea(rdi, __[logName]);
        a.mov(esi, 3);
        p.HostCall(HostFunctions.ResolveId);
        FailUnlessOk(p, 11);
        a.mov(rbx, rax);
        a.lea(rdi, __[lookupName]);
        a.mov(esi, 6);
        p.HostCall(HostFunctions.ResolveId);
        FailUnlessOk(p, 12);
        a.mov(r12, rax);

        a.lea(rdi, __[line]);
        a.mov(esi, lineBytes.Length);
        p.HostCall(rbx);
        FailUnlessOk(p, 13);

        a.lea(rdi, __[key]);
        a.mov(esi, 8);
        a.mov(edx, (uint)buffer);
        a.mov(ecx, capacity);
        p.HostCall(r12);
        FailUnlessOk(p, 14);

        // Print min(length, capacity) bytes of the value with one REP OUTSB, then a newline.
        Label fits = a.CreateLabel();
        a.mov(rcx, rax);
        a.cmp(rcx, capacity);
        a.jbe(fits);
        a.mov(ecx, capacity);
        a.Label(ref fits);
        a.mov(esi, (uint)buffer);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        p.ExitWith(0);

        // roll(RDI = sides) → 1 + random() mod sides; 0 for no sides.
        p.Place(ref roll);
        Label none = a.CreateLabel();
        a.test(rdi, rdi);
        a.jz(none);
        a.mov(r10, rdi);
        p.HostCall(RandomId);
        a.xor(edx, edx);
        a.div(r10);
        a.lea(rax, __[rdx + 1]);
        a.ret();
        a.Label(ref none);
        a.xor(eax, eax);
        a.ret();

        a.Label(ref logName);
        a.db("log"u8.ToArray());
        a.Label(ref lookupName);
        a.db("lookup"u8.ToArray());
        a.Label(ref line);
        a.db(lineBytes);
        a.Label(ref key);
        a.db("greeting"u8.ToArray());
        return p.Build(start);
    }

    private static void FailUnlessOk(GuestProgram p, int status)
    {
        Label ok = p.Asm.CreateLabel();
        p.Asm.test(rdx, rdx);
        p.Asm.jz(ok);
        p.ExitWith(status);
        p.Asm.Label(ref ok);
    }
}
