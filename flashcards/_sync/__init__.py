"""Sync twin of flashcards._async. Generated except compat.py."""
