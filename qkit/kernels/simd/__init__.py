"""What the fast kernels are built from: the CPU's features (`cpu`), the LLVM-IR building
blocks every micro-kernel uses (`ir`), and the register-only loops that measure this CPU's
int8 peak (`peak`)."""
