"""dad.frontend"""
