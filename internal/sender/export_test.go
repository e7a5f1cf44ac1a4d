package sender

// ListRead returns how many DLQ messages ListDeadLetters has read.
func ListRead() int64 { return listRead.Load() }
