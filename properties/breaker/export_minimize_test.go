package breaker

// Normalized is cfg with its defaults filled in, as Check uses it.
func Normalized(cfg Config) (Config, error) { return cfg.normalize() }
