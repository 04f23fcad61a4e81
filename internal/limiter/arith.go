package limiter

// floorDiv returns ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// floorMod returns a mod b in [0, b) for b > 0.
func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// mod returns j mod n in [0, n) for n > 0.
func mod(j int64, n int) int {
	m := int(j % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
