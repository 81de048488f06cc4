package gguf

import (
	"encoding/binary"
	"math"
)

// The k-quants: super-blocks of 256 values split into sub-blocks, each
// with its own scale (and minimum, for Q4_K and Q5_K) quantized against
// the super-block's f16 scales. The arithmetic is float32 operation by
// operation, each product converted explicitly so that the compiler
// fuses no multiply-add (as ggml's reference code is read: no
// contraction).

// groupMaxEps is ggml's GROUP_MAX_EPS: a group whose largest magnitude
// is below it is all zeros.
const groupMaxEps = 1e-15

// nearestInt rounds as ggml's nearest_int: adding 1.5·2²³ and reading the
// mantissa, which rounds halves to even for |f| < 2²² (and gives ggml's
// same meaningless value beyond).
func nearestInt(f float32) int {
	v := f + 12582912
	return int(math.Float32bits(v)&0x007fffff) - 0x00400000
}

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// makeQXQuants is make_qx_quants with rmse_type 1 and no importance
// weights (the weights are x²): symmetric codes L in [0, 2·nmax) and the
// scale, searched over 19 candidate inverse scales.
func makeQXQuants(nmax int, x []float32, L []int8) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		for i := range L[:len(x)] {
			L[i] = 0
		}
		return 0
	}
	fn := float32(nmax)
	iscale := -fn / mx
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fn + float32(float32(0.1)*float32(is))) / mx
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			w := float32(v * v)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				L[i] = int8(nmax + clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// makeQKX2Quants is make_qkx2_quants with use_mad false: codes L in
// [0, nmax], a scale and a minimum (returned negated, as the_min), fitted
// by weighted least squares over nstep+1 candidate inverse scales.
func makeQKX2Quants(nmax int, x, w []float32, L, Laux []uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	mn, mx := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		for i := range L[:len(x)] {
			L[i] = 0
		}
		return 0, -mn
	}
	fn := float32(nmax)
	iscale := fn / (mx - mn)
	scale = 1 / iscale
	var best float32
	for i, v := range x {
		L[i] = uint8(clampInt(nearestInt(float32(iscale*(v-mn))), 0, nmax))
		diff := float32(scale*float32(L[i])) + mn - v
		best += float32(w[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + fn) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*(v-mn))), 0, nmax)
			Laux[i] = uint8(l)
			fl := float32(l)
			wl := float32(w[i] * fl)
			sumL += wl
			sumL2 += float32(wl * fl)
			sumXL += float32(wl * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var cur float32
			for i, v := range x {
				diff := float32(thisScale*float32(Laux[i])) + thisMin - v
				cur += float32(w[i] * float32(diff*diff))
			}
			if cur < best {
				copy(L[:len(x)], Laux[:len(x)])
				best, scale, mn = cur, thisScale, thisMin
			}
		}
	}
	return scale, -mn
}

// scaleMinK4 is get_scale_min_k4: the j-th 6-bit scale and minimum of
// the 12 packed bytes q.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// quantizeScalesK quantizes the eight sub-block scales and minimums of a
// Q4_K or Q5_K super-block x (256 values) into out (d, dmin, scales[12])
// and returns the codes L of the values (0 to nmax).
func quantizeScalesK(out []byte, x []float32, L []uint8, nmax int, rmin, rdelta float32, nstep int, t Type, block int) error {
	var scales, mins [8]float32
	var w [32]float32
	var laux [32]uint8
	var maxScale, maxMin float32
	for j := 0; j < 8; j++ {
		sub := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range sub {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range sub {
			w[l] = avX + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, sub, w[:], L[32*j:32*j+32], laux[:], rmin, rdelta, nstep)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := out[4:16]
	clear(sc)
	for j := 0; j < 8; j++ {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	if err := putScale(out, maxScale/63, t, block); err != nil {
		return err
	}
	if err := putScale(out[2:], maxMin/63, t, block); err != nil {
		return err
	}
	d0 := fromF16(binary.LittleEndian.Uint16(out))
	m0 := fromF16(binary.LittleEndian.Uint16(out[2:]))
	for j := 0; j < 8; j++ {
		s, m := scaleMinK4(j, sc)
		d := float32(d0 * float32(s))
		if d == 0 {
			continue
		}
		dm := float32(m0 * float32(m))
		for i, v := range x[32*j : 32*j+32] {
			L[32*j+i] = uint8(clampInt(nearestInt((v+dm)/d), 0, nmax))
		}
	}
	return nil
}

func encodeQ4_K(dst []byte, x []float32) error {
	var L [QK_K]uint8
	for b := 0; b < len(x)/QK_K; b++ {
		blk, out := x[b*QK_K:(b+1)*QK_K], dst[b*144:(b+1)*144]
		if err := quantizeScalesK(out, blk, L[:], 15, -1, 0.1, 20, TypeQ4_K, b); err != nil {
			return err
		}
		q := out[16:]
		for j := 0; j < QK_K; j += 64 {
			for l := 0; l < 32; l++ {
				q[j/2+l] = L[j+l] | L[j+l+32]<<4
			}
		}
	}
	return nil
}

func decodeQ4_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		in, y := src[b*144:(b+1)*144], dst[b*QK_K:(b+1)*QK_K]
		d := fromF16(binary.LittleEndian.Uint16(in))
		mn := fromF16(binary.LittleEndian.Uint16(in[2:]))
		sc, q := in[4:16], in[16:]
		for j, is := 0, 0; j < QK_K; j, is = j+64, is+2 {
			s, m := scaleMinK4(is, sc)
			d1, m1 := float32(d*float32(s)), float32(mn*float32(m))
			s, m = scaleMinK4(is+1, sc)
			d2, m2 := float32(d*float32(s)), float32(mn*float32(m))
			qq := q[j/2 : j/2+32]
			for l := 0; l < 32; l++ {
				y[j+l] = float32(d1*float32(qq[l]&0xf)) - m1
				y[j+32+l] = float32(d2*float32(qq[l]>>4)) - m2
			}
		}
	}
}

func encodeQ5_K(dst []byte, x []float32) error {
	var L [QK_K]uint8
	for b := 0; b < len(x)/QK_K; b++ {
		blk, out := x[b*QK_K:(b+1)*QK_K], dst[b*176:(b+1)*176]
		if err := quantizeScalesK(out, blk, L[:], 31, -0.5, 0.1, 15, TypeQ5_K, b); err != nil {
			return err
		}
		qh, ql := out[16:48], out[48:]
		clear(qh)
		m1, m2 := uint8(1), uint8(2)
		for n := 0; n < QK_K; n += 64 {
			for j := 0; j < 32; j++ {
				l1, l2 := L[n+j], L[n+j+32]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[n/2+j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
		}
	}
	return nil
}

func decodeQ5_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		in, y := src[b*176:(b+1)*176], dst[b*QK_K:(b+1)*QK_K]
		d := fromF16(binary.LittleEndian.Uint16(in))
		mn := fromF16(binary.LittleEndian.Uint16(in[2:]))
		sc, qh, ql := in[4:16], in[16:48], in[48:]
		u1, u2 := uint8(1), uint8(2)
		for j, is := 0, 0; j < QK_K; j, is = j+64, is+2 {
			s, m := scaleMinK4(is, sc)
			d1, m1 := float32(d*float32(s)), float32(mn*float32(m))
			s, m = scaleMinK4(is+1, sc)
			d2, m2 := float32(d*float32(s)), float32(mn*float32(m))
			q := ql[j/2 : j/2+32]
			for l := 0; l < 32; l++ {
				v1, v2 := int(q[l]&0xf), int(q[l]>>4)
				if qh[l]&u1 != 0 {
					v1 += 16
				}
				if qh[l]&u2 != 0 {
					v2 += 16
				}
				y[j+l] = float32(d1*float32(v1)) - m1
				y[j+32+l] = float32(d2*float32(v2)) - m2
			}
			u1 <<= 2
			u2 <<= 2
		}
	}
}

func encodeQ6_K(dst []byte, x []float32) error {
	var L [QK_K]int8
	var scales [QK_K / 16]float32
	for b := 0; b < len(x)/QK_K; b++ {
		blk, out := x[b*QK_K:(b+1)*QK_K], dst[b*210:(b+1)*210]
		ql, qh, sc := out[0:128], out[128:192], out[192:208]
		var maxScale, maxAbs float32
		for ib := 0; ib < QK_K/16; ib++ {
			s := makeQXQuants(32, blk[16*ib:16*ib+16], L[16*ib:])
			scales[ib] = s
			if a := float32(math.Abs(float64(s))); a > maxAbs {
				maxAbs, maxScale = a, s
			}
		}
		if maxAbs < groupMaxEps {
			clear(out)
			continue
		}
		iscale := -128 / maxScale
		if err := putScale(out[208:], 1/iscale, TypeQ6_K, b); err != nil {
			return err
		}
		for ib := range scales {
			sc[ib] = uint8(int8(min(127, nearestInt(float32(iscale*scales[ib])))))
		}
		d0 := fromF16(binary.LittleEndian.Uint16(out[208:]))
		for j := 0; j < QK_K/16; j++ {
			d := float32(d0 * float32(int8(sc[j])))
			if d == 0 {
				continue
			}
			for i, v := range blk[16*j : 16*j+16] {
				L[16*j+i] = int8(clampInt(nearestInt(v/d), -32, 31) + 32)
			}
		}
		for j := 0; j < QK_K; j += 128 {
			qlj, qhj := ql[j/2:], qh[j/4:]
			for l := 0; l < 32; l++ {
				q1, q2 := uint8(L[j+l])&0xf, uint8(L[j+l+32])&0xf
				q3, q4 := uint8(L[j+l+64])&0xf, uint8(L[j+l+96])&0xf
				qlj[l] = q1 | q3<<4
				qlj[l+32] = q2 | q4<<4
				qhj[l] = uint8(L[j+l])>>4 | (uint8(L[j+l+32])>>4)<<2 | (uint8(L[j+l+64])>>4)<<4 | (uint8(L[j+l+96])>>4)<<6
			}
		}
	}
	return nil
}

func decodeQ6_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/QK_K; b++ {
		in, y := src[b*210:(b+1)*210], dst[b*QK_K:(b+1)*QK_K]
		d := fromF16(binary.LittleEndian.Uint16(in[208:]))
		for n := 0; n < QK_K; n += 128 {
			ql, qh, sc := in[n/2:], in[128+n/4:], in[192+n/16:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				y[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}
