"""Plain torch.nn parts that two or more methods share; nothing here imports Lightning."""
