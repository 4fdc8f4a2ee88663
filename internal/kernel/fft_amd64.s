//go:build !purego

#include "textflag.h"

// Sign mask negating the imaginary part of each complex128 in a YMM.
DATA negim<>+0(SB)/8, $0x0000000000000000
DATA negim<>+8(SB)/8, $0x8000000000000000
DATA negim<>+16(SB)/8, $0x0000000000000000
DATA negim<>+24(SB)/8, $0x8000000000000000
GLOBL negim<>(SB), RODATA|NOPTR, $32

// CMUL multiplies the packed complex128 pairs x by w into d (x and w kept):
// d = [xr*wr - xi*wi, xi*wr + xr*wi], as Go's complex product rounds.
#define CMUL(x, w, d, t1, t2) \
	VMOVDDUP w, t1; \
	VMULPD x, t1, t1; \
	VPERMILPD $0xF, w, t2; \
	VPERMILPD $0x5, x, d; \
	VMULPD d, t2, t2; \
	VADDSUBPD t2, t1, d

// func radix4AVX2(p0, p1, p2, p3, wa, wb, wc *complex128, wstep, n, back int)
// For i < n (n even): a0 = p0[i], a1 = p1[i]*wa[i], a2 = p2[i]*wb[i],
// a3 = p3[i]*wc[i] (the w advance wstep bytes per two points: 0 for a
// constant pair), then the 4-point DFT of a0..a3 back into p0..p3, with
// -i (forward) or +i (back != 0: the outputs of p1 and p3 swap).
TEXT ·radix4AVX2(SB), NOSPLIT, $0-80
	MOVQ p0+0(FP), R8
	MOVQ p1+8(FP), R9
	MOVQ p2+16(FP), R10
	MOVQ p3+24(FP), R11
	MOVQ wa+32(FP), R12
	MOVQ wb+40(FP), R13
	MOVQ wc+48(FP), R14
	MOVQ wstep+56(FP), R15
	MOVQ n+64(FP), CX
	MOVQ back+72(FP), AX
	// Stores of the second and fourth outputs: swapped backward.
	MOVQ R9, SI
	MOVQ R11, DI
	TESTQ AX, AX
	JZ r4_fwd
	MOVQ R11, SI
	MOVQ R9, DI
r4_fwd:
	VMOVUPD negim<>(SB), Y15
	XORQ DX, DX // byte offset into the rows
	SHRQ $1, CX
	JZ r4_done
r4_loop:
	VMOVUPD (R8)(DX*1), Y0
	VMOVUPD (R9)(DX*1), Y1
	VMOVUPD (R10)(DX*1), Y2
	VMOVUPD (R11)(DX*1), Y3
	VMOVUPD (R12), Y4
	CMUL(Y1, Y4, Y5, Y6, Y7)
	VMOVUPD (R13), Y4
	CMUL(Y2, Y4, Y8, Y6, Y7)
	VMOVUPD (R14), Y4
	CMUL(Y3, Y4, Y9, Y6, Y7)
	// a0 Y0, a1 Y5, a2 Y8, a3 Y9
	VADDPD Y5, Y0, Y10 // s01
	VSUBPD Y5, Y0, Y11 // d01
	VADDPD Y9, Y8, Y12 // s23
	VSUBPD Y9, Y8, Y13 // d23
	VPERMILPD $0x5, Y13, Y13
	VXORPD Y15, Y13, Y13 // r23 = d23 * -i = (im, -re)
	VADDPD Y12, Y10, Y0
	VMOVUPD Y0, (R8)(DX*1)
	VSUBPD Y12, Y10, Y0
	VMOVUPD Y0, (R10)(DX*1)
	VADDPD Y13, Y11, Y0
	VMOVUPD Y0, (SI)(DX*1)
	VSUBPD Y13, Y11, Y0
	VMOVUPD Y0, (DI)(DX*1)
	ADDQ $32, DX
	ADDQ R15, R12
	ADDQ R15, R13
	ADDQ R15, R14
	DECQ CX
	JNZ r4_loop
r4_done:
	VZEROUPPER
	RET

// func scaleCplxAVX2(dst, src *complex128, w *float64, n int)
// dst[i] = src[i] * w[i] (w real), n even.
TEXT ·scaleCplxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $1, CX
	JZ sc_done
sc_loop:
	VMOVUPD (SI), Y0
	VMOVDDUP (DX), X1
	VMOVDDUP 8(DX), X2
	VINSERTF128 $1, X2, Y1, Y1
	VMULPD Y1, Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $16, DX
	DECQ CX
	JNZ sc_loop
sc_done:
	VZEROUPPER
	RET
