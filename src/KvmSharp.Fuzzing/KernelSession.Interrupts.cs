// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.InterruptQueue"/>: KVM_INTERRUPT, KVM_NMI or KVM_X86_SET_MCE (<see cref="InterruptOps"/>) on a
/// session's vCPU, now and then after KVM_X86_SETUP_MCE, a flip of CR4.MCE (KVM_SET_SREGS) or of RFLAGS.IF
/// (KVM_SET_REGS); then what is queued (KVM_GET_VCPU_EVENTS, every byte), for KVM_X86_SET_MCE the bank and MCG_STATUS
/// (KVM_GET_MSRS), and the kvm_run fields post_kvm_run_save writes after a KVM_RUN with immediate_exit
/// (ready_for_interrupt_injection, if_flag, cr8, apic_base): nothing runs, so no interrupt-window timing is involved.
/// </summary>
public sealed partial class KernelSession
{
    private string InterruptQueue(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var rng = new Random(unchecked((int)op.A * 29 + 0x1A7));
        var text = new StringBuilder();
        if ((op.E & InterruptOps.SetupFirst) != 0)
        {
            ulong cap = X86StateOps.McgCapValue(rng);
            long setup = _kernel.Ioctl(fd, KvmIoctls.KVM_X86_SETUP_MCE, MemoryMarshal.AsBytes(new Span<ulong>(ref cap)));
            text.Append(CultureInfo.InvariantCulture, $"setup_mce 0x{cap:X} {Describe(setup)}, ");
        }
        if ((op.E & InterruptOps.FlipCr4Mce) != 0)
        {
            var s = new kvm_sregs();
            long get = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
            s.cr4 ^= 1UL << 6;
            text.Append(CultureInfo.InvariantCulture, $"cr4 0x{s.cr4:X} {(get == 0 ? Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_SREGS, Bytes(ref s))) : "get " + Describe(get))}, ");
        }
        if ((op.E & InterruptOps.FlipIf) != 0)
        {
            var r = new kvm_regs();
            long get = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_REGS, Bytes(ref r));
            r.rflags ^= 1UL << 9;
            text.Append(CultureInfo.InvariantCulture, $"rflags 0x{r.rflags:X} {(get == 0 ? Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_REGS, Bytes(ref r))) : "get " + Describe(get))}, ");
        }
        int bank = -1;
        switch (op.E & 7)
        {
            case InterruptOps.Interrupt:
            {
                uint irq = InterruptOps.Vector(rng);
                text.Append(CultureInfo.InvariantCulture, $"irq {irq} ").Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_INTERRUPT, BitConverter.GetBytes(irq))));
                break;
            }
            case InterruptOps.InterruptBadPointer:
                text.Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_INTERRUPT, InterruptOps.BadPointer(rng))));
                break;
            case InterruptOps.Nmi:
                text.Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_NMI, (ulong)rng.NextInt64())));
                break;
            case InterruptOps.SetMce:
            {
                var mce = InterruptOps.Mce(rng);
                bank = mce.bank;
                text.Append(CultureInfo.InvariantCulture, $"mce bank {mce.bank} status 0x{mce.status:X} mcg 0x{mce.mcg_status:X} ")
                    .Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_X86_SET_MCE, Bytes(ref mce))));
                break;
            }
            default:
                text.Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_X86_SET_MCE, InterruptOps.BadPointer(rng))));
                break;
        }
        var events = new kvm_vcpu_events();
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_VCPU_EVENTS, Bytes(ref events));
        text.Append(", ").Append(rc == 0 ? "events " + Convert.ToHexString(Bytes(ref events)) : "events " + Describe(rc));
        if (bank >= 0) text.Append(", ").Append(MceMsrs(fd, (uint)Math.Min(bank, 31)));
        if (_runPages.TryGetValue(op.Target, out var run) && !run.IsClosed)
        {
            // KVM_RUN with immediate_exit: EINTR before entering the guest, but post_kvm_run_save fills the fields.
            run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 1;
            MarkRun(op.Target);
            long runRc = _kernel.Ioctl(fd, KvmIoctls.KVM_RUN, 0UL);
            run.GetSpan(KvmRunLayout.immediate_exit, 1)[0] = 0;
            text.Append(", run ").Append(Describe(runRc)).Append(' ').Append(TinyGuestRun.RunFields(run));
        }
        return text.ToString();
    }

    /// <summary>MCG_CAP, MCG_STATUS and the bank's STATUS, ADDR, MISC (KVM_GET_MSRS stops at the first it refuses).</summary>
    private string MceMsrs(KvmSharp.Kernel.KernelFd fd, uint bank)
    {
        var entries = new kvm_msr_entry[]
        {
            new() { index = 0x179 }, new() { index = 0x17A },
            new() { index = 0x401 + 4 * bank }, new() { index = 0x402 + 4 * bank }, new() { index = 0x403 + 4 * bank },
        };
        var buffer = MsrBuffer((uint)entries.Length, entries);
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_MSRS, buffer);
        var text = new StringBuilder("msrs ").Append(Describe(rc));
        if (rc >= 0) AppendMsrs(text, buffer, (int)Math.Min(rc, entries.Length));
        return text.ToString();
    }
}
