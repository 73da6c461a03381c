// SPDX-License-Identifier: MIT
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// <c>vault</c>: a confidential guest. It keeps a secret in a page it makes private with KVM_HC_MAP_GPA_RANGE, shows
/// that the host cannot read it there (its "peek" host function gets <see cref="HostCallStatus.BadPointer"/>), makes
/// the page shared again and shows that the host then reads the same bytes (in-place conversion keeps contents on
/// SW_PROTECTED VMs). It needs a VM with private memory (GUEST-ABI.md, "Private memory"), e.g.
/// <c>kvmsharp run vault --kernel emulated --vm-type sw-protected --in-place-conversion</c>; elsewhere it says so and
/// exits <see cref="NoPrivateMemory"/>.
/// Exports: <c>_start</c> (the demo), <c>map_gpa_range(gpa, pages, attributes)</c> → the hypercall's return value,
/// <c>seal(ptr, len)</c> (make the vault private and copy len ≤ <see cref="Capacity"/> bytes in; → 0 or the
/// hypercall's error), <c>checksum()</c> (sum of the vault's bytes, read by the guest), <c>unseal()</c> (make it shared).
/// </summary>
public static class Vault
{
    /// <summary>The vault page: inside the image area of the smallest micro-VM, above any demo image.</summary>
    public const ulong Page = 0x18_0000;

    /// <summary>seal stores the length at the start of the page and the bytes after it.</summary>
    public const int Capacity = 4096 - sizeof(ulong);

    /// <summary>The fixed id of the host's <c>peek</c> in <see cref="Functions"/>.</summary>
    public const uint PeekId = 1;

    /// <summary>
    /// The exit status when the VM offers no private memory (<see cref="GuestAbi.CallRegion.FeaturePrivateMemory"/>
    /// clear).
    /// </summary>
    public const int NoPrivateMemory = 3;

    /// <summary>seal's answer when the input is longer than <see cref="Capacity"/>.</summary>
    public const ulong TooLong = 2;

    /// <summary>The text <c>_start</c> seals in the vault.</summary>
    public const string Secret = "the launch codes are 0000";

    /// <summary>
    /// The host side of the demo: <c>peek(ptr, len)</c> → the sum of the bytes the host reads there. A private page
    /// makes the read fail, and the guest gets <see cref="HostCallStatus.BadPointer"/>.
    /// </summary>
    public static HostFunctions Functions(TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var functions = new HostFunctions();
        functions.Add(PeekId, "peek", c =>
        {
            if (!c.IsValid(c.Args[0], c.Args[1])) log.WriteLine($"[host] peek at 0x{c.Args[0]:X}: refused, the page is private or not guest memory");
            byte[] bytes = c.ReadBytes(c.Args[0], c.Args[1]);
            log.WriteLine($"[host] peek at 0x{c.Args[0]:X}: read \"{Encoding.ASCII.GetString(bytes)}\"");
            return (ulong)bytes.Sum(b => (long)b);
        });
        return functions;
    }

    /// <summary>Assembles the <c>vault</c> guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), mapGpaRange = p.Export("map_gpa_range"), seal = p.Export("seal");
        Label checksum = p.Export("checksum"), unseal = p.Export("unseal");
        Label print = a.CreateLabel(), secret = a.CreateLabel();
        var texts = new Dictionary<string, Label>(StringComparer.Ordinal);
        byte[] secretBytes = Encoding.ASCII.GetBytes(Secret);

        // ---- _start: the whole story, printed on COM1 ----
        p.Place(ref start);
        Label hasPrivate = a.CreateLabel();
        a.mov(r8d, (uint)CallRegion.Address(CallRegion.Features));
        a.mov(rax, __qword_ptr[r8]);
        a.test(al, (byte)CallRegion.FeaturePrivateMemory);
        a.jnz(hasPrivate);
        Print("this VM has no private memory: try --kernel emulated --vm-type sw-protected --in-place-conversion\n");
        p.ExitWith(NoPrivateMemory);
        a.Label(ref hasPrivate);

        a.lea(rdi, __[secret]);
        a.mov(esi, secretBytes.Length);
        a.call(seal);
        ExitUnlessZero(4, "the host refused to make the vault private\n");
        Print("guest: the secret is in a private page now\n");

        // The host tries to read it: must be refused.
        Label refused = a.CreateLabel();
        a.mov(edi, (uint)(Page + sizeof(ulong)));
        a.mov(esi, secretBytes.Length);
        p.HostCall(PeekId);
        a.cmp(rdx, (int)HostCallStatus.BadPointer);
        a.je(refused);
        Print("guest: LEAK, the host read a private page\n");
        p.ExitWith(5);
        a.Label(ref refused);
        Print("guest: the host's peek was refused\n");

        a.call(checksum);
        a.mov(r12, rax);
        a.call(unseal);
        ExitUnlessZero(6, "the host refused to make the vault shared\n");
        Print("guest: the vault is shared again\n");

        Label same = a.CreateLabel();
        a.mov(edi, (uint)(Page + sizeof(ulong)));
        a.mov(esi, secretBytes.Length);
        p.HostCall(PeekId);
        Label unreadable = Fail(7, "the host could not read the shared vault\n");
        a.test(rdx, rdx);
        a.jnz(unreadable);
        a.cmp(rax, r12);
        a.je(same);
        Print("guest: the host read different bytes\n");
        p.ExitWith(8);
        a.Label(ref same);
        Print("guest: the host read the same bytes the guest kept private\n");
        p.ExitWith(0);

        // ---- map_gpa_range(RDI = gpa, RSI = pages, RDX = attributes) → RAX = the hypercall's return value ----
        p.Place(ref mapGpaRange);
        a.push(rbx);
        a.mov(rbx, rdi);
        a.mov(rcx, rsi);
        // x86.c __kvm_emulate_hypercall: nr in RAX, a0..a2 in RBX, RCX, RDX.
        a.mov(eax, (uint)KvmPara.KVM_HC_MAP_GPA_RANGE);
        a.vmcall();
        a.pop(rbx);
        a.ret();

        // ---- seal(RDI = ptr, RSI = len) → 0, TooLong, or the hypercall's error ----
        p.Place(ref seal);
        Label fits = a.CreateLabel(), sealed_ = a.CreateLabel(), copy = a.CreateLabel(), copied = a.CreateLabel();
        a.cmp(rsi, Capacity);
        a.jbe(fits);
        a.mov(eax, (uint)TooLong);
        a.ret();
        a.Label(ref fits);
        a.push(rdi);
        a.push(rsi);
        a.mov(edi, (uint)Page);
        a.mov(esi, 1);
        a.mov(edx, (uint)KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        a.call(mapGpaRange);
        a.pop(rsi);
        a.pop(rdi);
        a.test(rax, rax);
        a.jz(sealed_);
        a.ret();
        a.Label(ref sealed_);
        a.mov(r8d, (uint)Page);
        a.mov(__qword_ptr[r8], rsi);
        a.xor(ecx, ecx);
        a.Label(ref copy);
        a.cmp(rcx, rsi);
        a.jae(copied);
        a.mov(al, __byte_ptr[rdi + rcx]);
        a.mov(__byte_ptr[r8 + rcx + sizeof(ulong)], al);
        a.inc(rcx);
        a.jmp(copy);
        a.Label(ref copied);
        a.xor(eax, eax);
        a.ret();

        // ---- checksum() → sum of the vault's bytes ----
        p.Place(ref checksum);
        Label sum = a.CreateLabel(), summed = a.CreateLabel();
        a.mov(r8d, (uint)Page);
        a.mov(rsi, __qword_ptr[r8]);
        a.xor(eax, eax);
        a.xor(ecx, ecx);
        a.Label(ref sum);
        a.cmp(rcx, rsi);
        a.jae(summed);
        a.movzx(edx, __byte_ptr[r8 + rcx + sizeof(ulong)]);
        a.add(rax, rdx);
        a.inc(rcx);
        a.jmp(sum);
        a.Label(ref summed);
        a.ret();

        // ---- unseal() → the hypercall's return value ----
        p.Place(ref unseal);
        a.mov(edi, (uint)Page);
        a.mov(esi, 1);
        a.mov(edx, (uint)KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED);
        a.jmp(mapGpaRange);

        // ---- print(RSI = text, RCX = length) on COM1 with one REP OUTSB (one exit); clobbers RCX, RDX, RSI ----
        a.Label(ref print);
        a.mov(dx, Ports.Com1);
        a.rep.outsb();
        a.ret();

        a.Label(ref secret);
        a.db(secretBytes);
        foreach (var (text, label) in texts)
        {
            Label placed = label;
            a.Label(ref placed);
            a.db(Encoding.ASCII.GetBytes(text));
        }
        return p.Build(start);

        void Print(string text)
        {
            if (!texts.TryGetValue(text, out Label label)) texts[text] = label = a.CreateLabel();
            a.lea(rsi, __[label]);
            a.mov(ecx, text.Length);
            a.call(print);
        }

        void ExitUnlessZero(int status, string why)
        {
            Label fail = Fail(status, why);
            a.test(rax, rax);
            a.jnz(fail);
        }

        // A failure block placed out of line: print why, exit with status.
        Label Fail(int status, string why)
        {
            Label skip = a.CreateLabel(), fail = a.CreateLabel();
            a.jmp(skip);
            a.Label(ref fail);
            Print("guest: " + why);
            p.ExitWith(status);
            a.Label(ref skip);
            return fail;
        }
    }
}
